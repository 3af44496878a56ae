"""`fieldops vision promote`: a worse candidate is refused, an equal one promoted and recorded,
on a frozen evaluation set of three CPLID fixture photos (the real bundled cascade)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from field_api.inspections.export_labels import current_model_name as service_current_model
from vision.cli.app import app
from vision.errors import DatasetLayoutError
from vision.train.model_card import CARD_FILE, DEFAULT_MODELS_DIR
from vision.train.promotion import (
    CURRENT_FILE,
    EVAL_SET_FILE,
    current_model_name,
    freeze_eval_set,
    gate,
)

CPLID = Path(__file__).resolve().parents[1] / "fixtures" / "vision" / "cplid"
BUNDLED = DEFAULT_MODELS_DIR / "cplid-cascade"


def _variant(models: Path, name: str, *, threshold: float | None) -> Path:
    """A model folder sharing the bundled weights (links) with its own card."""
    folder = models / name
    folder.mkdir(parents=True)
    for item in BUNDLED.iterdir():
        if item.name not in (CARD_FILE, "README.md"):
            (folder / item.name).symlink_to(item)
    card = yaml.safe_load((BUNDLED / CARD_FILE).read_text(encoding="utf-8"))
    card["name"] = name
    if threshold is not None:  # a stricter output threshold: boxes drop, recall falls
        card["conf_threshold"] = dict.fromkeys(card["conf_threshold"], threshold)
        card["version"] = card["version"] + 1
    (folder / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    models = tmp_path / "models"
    _variant(models, "cplid-cascade", threshold=None)
    _variant(models, "cplid-strict", threshold=0.99)
    _variant(models, "cplid-same", threshold=None)
    data = tmp_path / "eval"
    shutil.copytree(CPLID, data)
    return models, data


def _promote(models: Path, data: Path, name: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [
        "promote", name, "--data", str(data), "--models-dir", str(models), "--threads", "1",
        *extra,
    ])
    return result.exit_code, result.output


def test_a_worse_candidate_is_refused_with_both_tables(setup: tuple[Path, Path]) -> None:
    models, data = setup
    code, out = _promote(models, data, "cplid-strict", "--over", "cplid-cascade")
    assert code == 1, out
    assert "拒绝晋升" in out and "refused: cplid-strict v5 is worse than cplid-cascade v4" in out
    assert "候选 / candidate: cplid-strict v5" in out and "当前 / current: cplid-cascade v4" in out
    assert out.count("| defect |") == 2 and out.count("| insulator |") == 2
    assert "defect: 召回率 recall 0.0000 <" in out
    assert not (models / CURRENT_FILE).exists()  # nothing recorded
    assert (data / EVAL_SET_FILE).is_file()  # the set was frozen on first use
    assert current_model_name(models) == "cplid-cascade"


def test_an_equal_candidate_is_promoted_recorded_and_becomes_the_default(
    setup: tuple[Path, Path],
) -> None:
    models, data = setup
    code, out = _promote(models, data, "cplid-same", "--over", "cplid-cascade", "--by", "王工")
    assert code == 0, out
    assert "promoted: cplid-same v4 is now current" in out
    record = yaml.safe_load((models / CURRENT_FILE).read_text(encoding="utf-8"))
    assert record["current"] == "cplid-same"
    [entry] = record["promotions"]
    assert (entry["model"], entry["over"], entry["by"], entry["photos"]) == (
        "cplid-same", "cplid-cascade", "王工", 3)
    assert entry["tables"]["candidate"] == entry["tables"]["current"]
    assert set(entry["tables"]["current"]) == {"insulator", "defect"}
    assert entry["tables"]["current"]["defect"]["recall"] == 1.0
    # what the CLI and the service take as "the current model" now
    assert current_model_name(models) == "cplid-same"
    assert service_current_model(models) == "cplid-same"
    # --over defaults to the current model: the strict one is judged against cplid-same
    code, out = _promote(models, data, "cplid-strict")
    assert code == 1 and "worse than cplid-same v4" in out, out


def test_a_changed_evaluation_set_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "eval"
    shutil.copytree(CPLID, data)
    frozen = freeze_eval_set(data)
    assert frozen.created and frozen.photos == 3
    assert freeze_eval_set(data).sha256 == frozen.sha256  # unchanged: the same set
    shutil.copyfile(data / "images" / "defect_001.jpg", data / "images" / "extra.jpg")
    with pytest.raises(DatasetLayoutError, match=r"no longer matches .*images/extra\.jpg"):
        freeze_eval_set(data)


def test_the_gate_allows_the_tolerance_and_no_more() -> None:
    current = {"defect": {"recall": 1.0, "ap50": 1.0}, "insulator": {"recall": 0.93, "ap50": 0.96}}
    within = {"defect": {"recall": 0.98, "ap50": 0.99}, "insulator": {"recall": 0.95, "ap50": 0.94}}
    assert gate(within, current, 0.02) == []
    worse_ap = {**within, "insulator": {"recall": 0.99, "ap50": 0.93}}
    assert [(s.class_name, s.figure) for s in gate(worse_ap, current, 0.02)] == [
        ("insulator", "ap50")]
    missing = {"insulator": within["insulator"]}
    assert {s.figure for s in gate(missing, current, 0.02)} == {"recall", "ap50"}
