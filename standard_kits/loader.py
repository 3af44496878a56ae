"""Read the YAML files into a validated :class:`~standard_kits.catalogue.Catalogue`.

Layout of a data root (the package folder by default)::

    data/materials.yaml  data/connection_kits.yaml  data/repair_kits.yaml
    data/design_rules.yaml  cards/*.yaml

Every problem found (YAML syntax, schema, cross-file consistency) is collected and raised
together as one :class:`~standard_kits.validation.CatalogueError`, so a broken edit is reported
in full instead of one error at a time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from standard_kits.catalogue import Catalogue
from standard_kits.schemas import (
    ChecklistCard,
    ConnectionKitsFile,
    DesignRules,
    MaterialsFile,
    RepairKitsFile,
)
from standard_kits.validation import CatalogueError, check_catalogue

PACKAGE_ROOT = Path(__file__).resolve().parent

M = TypeVar("M", bound=BaseModel)
# libyaml's safe loader is ~10x faster; the pure-Python one is the fallback where it is missing
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def data_files(root: Path) -> list[Path]:
    """Every YAML file the catalogue is read from under ``root``."""
    fixed = [root / "data" / n for n in (
        "materials.yaml", "connection_kits.yaml", "repair_kits.yaml", "design_rules.yaml",
    )]
    return fixed + sorted((root / "cards").glob("*.yaml"))


def read_catalogue(root: Path = PACKAGE_ROOT) -> Catalogue:
    """Read and validate the catalogue under ``root``; CatalogueError lists every problem."""
    problems: list[str] = []
    data = root / "data"
    materials = _parse(data / "materials.yaml", MaterialsFile, problems)
    kits = _parse(data / "connection_kits.yaml", ConnectionKitsFile, problems)
    repairs = _parse(data / "repair_kits.yaml", RepairKitsFile, problems)
    rules = _parse(data / "design_rules.yaml", DesignRules, problems)
    card_files = sorted((root / "cards").glob("*.yaml"))
    if not card_files:
        problems.append(f"{root / 'cards'}: no checklist cards")
    cards = [_parse(path, ChecklistCard, problems) for path in card_files]
    if problems or materials is None or kits is None or repairs is None or rules is None:
        raise CatalogueError(problems)
    catalogue = Catalogue(
        materials={m.code: m for m in materials.materials},
        connection_kits=tuple(kits.kits),
        repair_kits=tuple(repairs.repair_kits),
        design_rules=rules,
        cards=tuple(c for c in cards if c is not None),
    )
    problems = check_catalogue(catalogue)
    if problems:
        raise CatalogueError(problems)
    return catalogue


@lru_cache(maxsize=4)
def load_catalogue(root: Path | None = None) -> Catalogue:
    """The validated catalogue, read once per root and cached (the bundled data by default)."""
    return read_catalogue(PACKAGE_ROOT if root is None else root)


def _parse(path: Path, model: type[M], problems: list[str]) -> M | None:
    raw = _read_yaml(path, problems)
    if raw is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"{path.name}: {loc}: {err['msg']}")
        return None


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=_SafeLoader)  # noqa: S506 - a safe loader, C or Python
    except FileNotFoundError:
        problems.append(f"{path}: missing")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{path.name}: not valid YAML: {exc}")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{path.name}: expected a mapping at the top level")
        return None
    return raw
