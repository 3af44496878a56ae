"""Promoting a model: judge a candidate against the current one on a frozen evaluation set.

``fieldops vision promote NAME --over CURRENT --data DIR`` (:mod:`vision.cli.lifecycle`):

1. The evaluation set is frozen: ``DIR/EVAL_SET.sha256`` lists every file of ``DIR/images`` and
   ``DIR/annotations`` with its sha256 (``sha256sum`` format, so ``sha256sum -c`` checks it too).
   The first promotion on a folder writes it; every later one refuses a folder whose files no
   longer match it (a photo added, removed or changed): the candidate is judged on the same set
   the current model was.
2. Both models run the whole pipeline on that set (:func:`vision.train.evaluate.evaluate_folder`,
   IoU 0.5 at each model's own output thresholds, AP over all scores) — the figures the model card
   reports under ``metrics.val``.
3. The gate (:func:`gate`): the candidate is refused when, on ANY class of the current model, its
   recall or its AP50 is lower than the current's by more than the tolerance (default 0.02), or
   it lacks the class.
4. A promotion is recorded in ``models/current.yaml`` (:data:`CURRENT_FILE`): ``current`` names
   the model the CLI and the service use by default, and ``promotions`` keeps every promotion
   (model and version, over which, when, by whom, the evaluation set's digest, the tolerance and
   both tables), newest last.

Pure apart from the evaluation callback: PyYAML and the standard library.
"""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from vision.detect.images import IMAGE_SUFFIXES
from vision.errors import DatasetLayoutError, ModelCardError
from vision.hashing import sha256_file

#: The models folder's pointer to the current model and its promotion history.
CURRENT_FILE = "current.yaml"
#: The frozen evaluation set's file list, inside the evaluation folder.
EVAL_SET_FILE = "EVAL_SET.sha256"
#: The model used when no promotion was ever recorded.
FALLBACK_MODEL = "cplid-cascade"
DEFAULT_TOLERANCE = 0.02
#: Figures the gate compares (both: higher is better).
GATED = ("recall", "ap50")
#: Columns of a printed table, as the model card's validation tables show them.
COLUMNS = ("threshold", "precision", "recall", "ap50", "ap50_95", "image_recall", "tp", "fp", "fn")

#: One model's figures on the set: class name → figure name → value.
Table = dict[str, dict[str, float | int | None]]


# ----------------------------------------------------------------------------- current model
def read_current(models_dir: Path) -> dict[str, Any]:
    """The models folder's ``current.yaml`` (empty when there is none).

    Raises:
        ModelCardError: the file is not a YAML mapping.
    """
    path = models_dir / CURRENT_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ModelCardError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ModelCardError(f"{path} must be a mapping with 'current' and 'promotions'")
    return data


def current_model_name(models_dir: Path) -> str:
    """The model promoted last in ``models_dir`` (``current.yaml``), else :data:`FALLBACK_MODEL`."""
    name = read_current(models_dir).get("current")
    return name if isinstance(name, str) and name else FALLBACK_MODEL


# ----------------------------------------------------------------------------- frozen set
def _set_files(data_dir: Path) -> list[Path]:
    images = data_dir / "images"
    if not images.is_dir():
        raise DatasetLayoutError(
            f"{data_dir} has no images/ folder (expected images/ + annotations/)"
        )
    files = [p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DatasetLayoutError(f"{images} holds no images")
    annotations = data_dir / "annotations"
    if annotations.is_dir():
        files += [p for p in annotations.iterdir() if p.is_file() and p.suffix == ".xml"]
    return sorted(files, key=lambda p: p.relative_to(data_dir).as_posix())


def _listing(data_dir: Path) -> str:
    return "".join(
        f"{sha256_file(p)}  {p.relative_to(data_dir).as_posix()}\n" for p in _set_files(data_dir)
    )


@dataclass(frozen=True)
class EvalSet:
    """The frozen evaluation set: its folder, photo count and the digest of its listing."""

    data_dir: Path
    photos: int
    sha256: str
    created: bool


def freeze_eval_set(data_dir: Path) -> EvalSet:
    """Write ``EVAL_SET.sha256`` on first use, else check the folder still matches it.

    Raises:
        DatasetLayoutError: no images, or the folder's files differ from the frozen list (the
            message names the first few differences).
    """
    listing = _listing(data_dir)
    path = data_dir / EVAL_SET_FILE
    created = not path.is_file()
    if created:
        path.write_text(listing, encoding="utf-8")
    frozen = path.read_text(encoding="utf-8")
    if frozen != listing:
        was, now = set(frozen.splitlines()), set(listing.splitlines())
        changed = sorted(line.split("  ", 1)[-1] for line in was ^ now)
        raise DatasetLayoutError(
            f"评估集已变化，与 {path.name} 不符 / the evaluation set in {data_dir} no longer "
            f"matches {path.name} (frozen list): {', '.join(dict.fromkeys(changed[:6]))}; "
            "judge models on the frozen set, or freeze a new one in a new folder"
        )
    photos = sum(1 for line in listing.splitlines() if line.split("  ", 1)[1].startswith("images/"))
    return EvalSet(data_dir, photos, hashlib.sha256(listing.encode()).hexdigest(), created)


# ----------------------------------------------------------------------------- tables, gate
def table_of(result: Mapping[str, Any]) -> Table:
    """The per-class figures of an :func:`~vision.train.evaluate.evaluate_folder` result."""
    thresholds = result.get("conf_threshold", {})
    table: Table = {}
    for name, row in result["classes"].items():
        table[name] = {
            "threshold": thresholds.get(name),
            **{k: row.get(k) for k in COLUMNS if k != "threshold"},
        }
    return table


def render_table(title: str, table: Table) -> str:
    """A Markdown table of one model's figures, as the model card prints them."""
    head = "| class | " + " | ".join(COLUMNS) + " |"
    lines = [title, "", head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, row in table.items():
        cells = []
        for key in COLUMNS:
            value = row.get(key)
            cells.append("—" if value is None else
                         f"{value:.4f}" if isinstance(value, float) else str(value))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Shortfall:
    """A class on which the candidate falls short of the current model beyond the tolerance."""

    class_name: str
    figure: str
    candidate: float | None
    current: float

    def line(self, tolerance: float) -> str:
        """One zh-CN / en line saying what falls short."""
        got = "缺失 / missing" if self.candidate is None else f"{self.candidate:.4f}"
        label = {"recall": "召回率 recall", "ap50": "AP50"}.get(self.figure, self.figure)
        return (f"{self.class_name}: {label} {got} < {self.current:.4f} - {tolerance} "
                f"(当前模型 / current)")


def gate(candidate: Table, current: Table, tolerance: float) -> list[Shortfall]:
    """Every class of ``current`` on which ``candidate``'s recall or AP50 is lower by more than
    ``tolerance`` (or missing); empty: the candidate may be promoted.

    Example:
        >>> gate({"defect": {"recall": 0.95, "ap50": 1.0}},
        ...      {"defect": {"recall": 1.0, "ap50": 1.0}}, 0.02)[0].figure
        'recall'
    """
    short: list[Shortfall] = []
    for name, row in current.items():
        for figure in GATED:
            ours = row.get(figure)
            if ours is None:
                continue
            theirs = candidate.get(name, {}).get(figure)
            if theirs is None or float(theirs) < float(ours) - tolerance - 1e-9:
                short.append(Shortfall(name, figure, None if theirs is None else float(theirs),
                                       float(ours)))
    return short


# ----------------------------------------------------------------------------- the promotion
@dataclass(frozen=True)
class Judged:
    """One model's name, version, folder and figures on the frozen set."""

    name: str
    version: int
    folder: Path
    table: Table


@dataclass(frozen=True)
class Verdict:
    """What ``promote`` decided: both models, the set, the shortfalls, the record written."""

    candidate: Judged
    current: Judged
    eval_set: EvalSet
    tolerance: float
    shortfalls: list[Shortfall]
    record: dict[str, Any] | None

    @property
    def promoted(self) -> bool:
        """True when the candidate passed the gate and was recorded as current."""
        return self.record is not None


#: Evaluates a model folder on a data folder: (name, version, evaluate_folder result).
Evaluate = Callable[[Path, Path], tuple[str, int, dict[str, Any]]]


def promote(
    candidate: Path,
    current: Path,
    data_dir: Path,
    *,
    evaluate: Evaluate,
    models_dir: Path,
    tolerance: float = DEFAULT_TOLERANCE,
    by: str | None = None,
    now: datetime | None = None,
) -> Verdict:
    """Judge ``candidate`` against ``current`` on the frozen set in ``data_dir``; record it in
    ``models_dir/current.yaml`` when it passes (see the module docstring).

    Raises:
        DatasetLayoutError: the evaluation folder is unusable or no longer the frozen set.
        ModelCardError: ``current.yaml`` is unreadable.
    """
    if tolerance < 0:
        raise ValueError("tolerance must be at least 0")
    eval_set = freeze_eval_set(data_dir)
    judged = []
    for folder in (candidate, current):
        name, version, result = evaluate(folder, data_dir)
        judged.append(Judged(name, version, folder, table_of(result)))
    cand, cur = judged
    shortfalls = gate(cand.table, cur.table, tolerance)
    record = None
    if not shortfalls:
        record = _record(models_dir, cand, cur, eval_set, tolerance, by=by, now=now)
    return Verdict(cand, cur, eval_set, tolerance, shortfalls, record)


def _record(
    models_dir: Path,
    cand: Judged,
    cur: Judged,
    eval_set: EvalSet,
    tolerance: float,
    *,
    by: str | None,
    now: datetime | None,
) -> dict[str, Any]:
    data = read_current(models_dir)
    entry: dict[str, Any] = {
        "model": cand.name,
        "version": cand.version,
        "over": cur.name,
        "over_version": cur.version,
        "at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "by": by or _os_user(),
        "data": str(eval_set.data_dir),
        "eval_set_sha256": eval_set.sha256,
        "photos": eval_set.photos,
        "tolerance": tolerance,
        "tables": {"candidate": cand.table, "current": cur.table},
    }
    history = data.get("promotions")
    promotions: list[Any] = list(history) if isinstance(history, Sequence) else []
    promotions.append(entry)
    folder_name = cand.folder.name if cand.folder.parent.resolve() == models_dir.resolve() \
        else str(cand.folder)
    out = {"current": folder_name, "promotions": promotions}
    path = models_dir / CURRENT_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        "# Written by `fieldops vision promote`: the model in use and every promotion.\n"
        + yaml.safe_dump(out, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)
    return entry


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"
