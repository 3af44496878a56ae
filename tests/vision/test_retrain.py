"""`fieldops vision retrain`: CPLID plus the retraining set merged into one training dataset.

Training itself takes hours on a CPU (documented in models/cplid-cascade/README.md); this checks
the dataset the training reads: every photo of both sources in its split, labels beside them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from vision.cli.app import app
from vision.train.training import split_items
from vision.train.voc import read_voc

CPLID = Path(__file__).resolve().parents[1] / "fixtures" / "vision" / "cplid"


def _split(root: Path, split: str, stems: list[str], *, annotated: bool = True) -> None:
    (root / split / "images").mkdir(parents=True)
    (root / split / "annotations").mkdir(parents=True)
    for stem in stems:
        shutil.copyfile(CPLID / "images" / f"{stem}.jpg", root / split / "images" / f"{stem}.jpg")
        if annotated:
            shutil.copyfile(CPLID / "annotations" / f"{stem}.xml",
                            root / split / "annotations" / f"{stem}.xml")


def test_retrain_merges_cplid_and_the_retraining_set(tmp_path: Path) -> None:
    cplid, export = tmp_path / "cplid", tmp_path / "export"
    _split(cplid, "train", ["defect_001", "defect_012"])
    _split(cplid, "val", ["defect_020"])
    # the export: the same file name as a CPLID photo (names must not collide), and a photo
    # whose findings were all rejected (a hard negative: no annotation file)
    _split(export, "train", ["defect_001"])
    _split(export, "val", ["defect_012"], annotated=False)
    result = CliRunner().invoke(app, [
        "retrain", "--export", str(export), "--cplid", str(cplid), "--name", "cplid-field",
        "--work-dir", str(tmp_path / "work"), "--assemble-only",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[0])
    data = Path(summary["data"])
    assert data == tmp_path / "work" / "retrain" / "cplid-field" / "data"
    assert summary["photos"] == {"train": {"cplid": 2, "field": 1},
                                 "val": {"cplid": 1, "field": 1}}
    train = {img.name: ann for img, ann in split_items(data, "train")}
    assert sorted(train) == ["cplid__defect_001.jpg", "cplid__defect_012.jpg",
                             "field__defect_001.jpg"]
    val = {img.name: ann for img, ann in split_items(data, "val")}
    assert val["field__defect_012.jpg"] is None  # a negative stays a negative
    assert val["cplid__defect_020.jpg"] is not None
    # photos are the originals (hard links), labels are the sources' own boxes
    link = data / "train" / "images" / "field__defect_001.jpg"
    assert link.samefile(export / "train" / "images" / "defect_001.jpg")
    ann = train["field__defect_001.jpg"]
    assert ann is not None
    assert read_voc(ann).objects == read_voc(CPLID / "annotations/defect_001.xml").objects
    assert json.loads((data / "sources.json").read_text())["export"] == str(export)


def test_retrain_refuses_a_source_without_its_splits(tmp_path: Path) -> None:
    cplid, export = tmp_path / "cplid", tmp_path / "export"
    _split(cplid, "train", ["defect_001"])
    _split(cplid, "val", ["defect_020"])
    _split(export, "train", ["defect_012"])  # no val/
    result = CliRunner().invoke(app, [
        "retrain", "--export", str(export), "--cplid", str(cplid), "--name", "x",
        "--work-dir", str(tmp_path / "work"), "--assemble-only",
    ])
    assert result.exit_code == 2
    assert "val/images" in result.output
    assert not (tmp_path / "work" / "retrain" / "x" / "data").exists()
