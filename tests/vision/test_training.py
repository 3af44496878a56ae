"""Dataset building for training (no training runs here: they take hours)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from vision.cli.train import app
from vision.errors import TrainingError
from vision.train.training import (
    TileOptions,
    _base_of,
    _initial_weights,
    _reused_stage,
    build_frame_dataset,
    build_tile_dataset,
    model_yaml,
    plan_tiles,
    split_items,
    stage_plans,
)
from vision.train.voc import VocAnnotation, VocObject


def _voc(objects: list[tuple[str, tuple[int, int, int, int]]], w: int, h: int) -> str:
    body = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    return f"<annotation><size><width>{w}</width><height>{h}</height></size>{body}</annotation>"


@pytest.fixture
def cplid_like(tmp_path: Path) -> Path:
    """Two splits, 640x480 photos: one with an insulator holding a defect, one negative."""
    root = tmp_path / "data"
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "annotations").mkdir()
        Image.new("RGB", (640, 480), (90, 120, 150)).save(root / split / "images" / "d1.jpg")
        (root / split / "annotations" / "d1.xml").write_text(
            _voc([("insulator", (40, 200, 600, 280)), ("defect", (300, 210, 360, 260))], 640, 480),
            encoding="utf-8",
        )
        Image.new("RGB", (640, 480)).save(root / split / "images" / "n1.jpg")  # no annotation
    return root


def test_split_items_pairs_images_with_annotations(cplid_like: Path) -> None:
    items = split_items(cplid_like, "train")

    assert [(i.name, a.name if a else None) for i, a in items] == [
        ("d1.jpg", "d1.xml"),
        ("n1.jpg", None),
    ]


def test_missing_split_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="train/images"):
        split_items(tmp_path, "train")


def test_frame_dataset_has_labels_for_the_chosen_classes_only(
    cplid_like: Path, tmp_path: Path
) -> None:
    data_yaml = build_frame_dataset(cplid_like, tmp_path / "out", ["insulator"])

    cfg = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    labels = tmp_path / "out" / "labels" / "train"
    assert cfg["names"] == {0: "insulator"}
    assert Path(cfg["train"]).is_absolute()
    assert (labels / "d1.txt").read_text(
        encoding="utf-8"
    ) == "0 0.5 0.5 0.875 0.16666666666666666\n"
    assert (labels / "n1.txt").read_text(encoding="utf-8") == ""
    assert (tmp_path / "out" / "images" / "val" / "d1.jpg").is_file()


def test_frame_dataset_is_reused_when_nothing_changed(cplid_like: Path, tmp_path: Path) -> None:
    build_frame_dataset(cplid_like, tmp_path / "out", ["insulator", "defect"])
    label = tmp_path / "out" / "labels" / "train" / "d1.txt"
    stamp = label.stat().st_mtime_ns

    build_frame_dataset(cplid_like, tmp_path / "out", ["insulator", "defect"])

    assert label.stat().st_mtime_ns == stamp
    assert not (tmp_path / "out.building").exists()


def test_plan_tiles_along_gt_insulator_keeps_the_defect_in_tile_pixels() -> None:
    voc = VocAnnotation(
        "a.jpg",
        1152,
        864,
        (
            VocObject("insulator", (100.0, 400.0, 900.0, 480.0)),
            VocObject("defect", (500.0, 410.0, 560.0, 460.0)),
        ),
    )

    tiles = plan_tiles(
        voc, (1152, 864), marker="insulator", targets=["defect"], options=TileOptions(), rng=None
    )

    with_defect = [(t, b) for t, b in tiles if b]
    assert len(tiles) == 3  # 800 px of insulator: 320 px tiles every 240 px (25 % overlap)
    assert len(with_defect) == 1
    assert all(t[2] - t[0] == 320 and t[3] - t[1] == 320 for t, _ in tiles)
    for tile, boxes in with_defect:
        ((cls, (x1, y1, x2, y2)),) = boxes
        assert cls == 0
        assert (x1 + tile[0], y1 + tile[1], x2 + tile[0], y2 + tile[1]) == (500, 410, 560, 460)


def test_tile_dataset_keeps_positives_and_samples_negatives(
    cplid_like: Path, tmp_path: Path
) -> None:
    options = TileOptions(tile_px=160, positive_passes=2, negatives_per_positive=0.5)

    data_yaml = build_tile_dataset(cplid_like, tmp_path / "tiles", options=options, seed=0)

    root = data_yaml.parent
    labels = sorted((root / "labels" / "train").glob("*.txt"))
    positives = [p for p in labels if p.read_text(encoding="utf-8")]
    negatives = [p for p in labels if not p.read_text(encoding="utf-8")]
    assert positives
    assert len(negatives) == round(len(positives) * 0.5)
    for label in labels:
        image = root / "images" / "train" / f"{label.stem}.jpg"
        with Image.open(image) as im:
            assert im.size == (160, 160)
    for line in (positives[0].read_text(encoding="utf-8")).splitlines():
        cls, *numbers = line.split()
        assert cls == "0"
        assert all(0.0 <= float(v) <= 1.0 for v in numbers)


def test_tile_dataset_is_deterministic_for_a_seed(cplid_like: Path, tmp_path: Path) -> None:
    a = build_tile_dataset(cplid_like, tmp_path / "a", options=TileOptions(tile_px=160), seed=3)
    b = build_tile_dataset(cplid_like, tmp_path / "b", options=TileOptions(tile_px=160), seed=3)

    names_a = sorted(p.name for p in (a.parent / "labels" / "train").iterdir())
    names_b = sorted(p.name for p in (b.parent / "labels" / "train").iterdir())
    assert names_a == names_b


def test_model_yaml_overrides_nc_and_keeps_the_scale_in_the_name(tmp_path: Path) -> None:
    path = model_yaml(tmp_path, nc=2)

    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert path.name == "yolo11n.yaml"
    assert cfg["nc"] == 2
    assert "n" in cfg["scales"]


def test_jitter_is_bounded() -> None:
    from vision.train.training import jitter_box

    rng = np.random.default_rng(0)
    for _ in range(100):
        x1, y1, x2, y2 = jitter_box((100.0, 100.0, 300.0, 200.0), rng, 0.1)
        assert 70 <= x1 <= 130 and 190 <= x2 <= 330
        assert 85 <= y1 <= 115 and 185 <= y2 <= 215


def test_cli_rejects_a_folder_without_splits(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "--data", str(tmp_path), "--work-dir", str(tmp_path / "w")]
    )

    assert result.exit_code == 2
    assert "train/images" in result.output


def test_cli_rejects_a_stage_of_the_other_variant(cplid_like: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "--data", str(cplid_like), "--variant", "single", "--stage", "defect"]
    )

    assert result.exit_code == 2
    assert "stages ['main']" in result.output


def test_cli_needs_a_stage_to_start_from_weights(cplid_like: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    result = CliRunner().invoke(
        app,
        ["train", "--data", str(cplid_like), "--init-weights", str(weights),
         "--work-dir", str(tmp_path / "w")],
    )

    assert result.exit_code == 2
    assert "--init-weights starts one stage" in result.output


BUNDLED = Path(__file__).resolve().parents[2] / "models" / "cplid-cascade"


def test_initial_weights_must_detect_the_stage_classes(tmp_path: Path) -> None:
    insulator, defect = stage_plans("cascade", epochs=1, imgsz=320, tiles=TileOptions())

    assert _initial_weights(BUNDLED / "defect.pt", defect) == (BUNDLED / "defect.pt").resolve()
    with pytest.raises(TrainingError, match=r"needs classes \['insulator'\]"):
        _initial_weights(BUNDLED / "defect.pt", insulator)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="not an Ultralytics checkpoint"):
        _initial_weights(junk, defect)


def test_card_names_what_each_run_started_from(tmp_path: Path) -> None:
    weights = tmp_path / "defect.pt"
    weights.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()[:16]

    assert _base_of({"model": str(tmp_path / "yolo11n.yaml"), "pretrained": False}) == (
        "yolo11n.yaml (from scratch, no pretrained weights)"
    )
    assert _base_of({"model": str(weights), "pretrained": True}) == (
        f"weights defect.pt (sha256 {digest})"
    )


def test_a_reused_stage_keeps_its_weights_figures_and_origin(tmp_path: Path) -> None:
    from vision.train.model_card import load_card

    old = load_card(BUNDLED)
    kept = _reused_stage(old, "defect", tmp_path)

    assert (tmp_path / "defect.pt").read_bytes() == (BUNDLED / "defect.pt").read_bytes()
    assert (tmp_path / kept.stage["onnx"]).is_file()
    assert (tmp_path / kept.stage["openvino"] / "defect.xml").is_file()
    source = old.stages["defect"]
    assert kept.stage["imgsz"] == source.imgsz and kept.stage["tile_px"] == source.tile_px
    assert "openvino_int8" not in kept.stage  # a new int8 network is made from the new f32 one
    assert kept.metrics["defect"]["ap50"] == old.metrics.stage_val["defect"]["defect"].ap50
    assert kept.epochs == (old.training.model_extra or {})["epochs"]["defect"]
    assert kept.base.startswith(f"kept from cplid-cascade version {old.version}")
    with pytest.raises(TrainingError, match="no stage 'main'"):
        _reused_stage(old, "main", tmp_path)


def test_package_cli_wants_stage_equals_model(cplid_like: Path) -> None:
    result = CliRunner().invoke(
        app, ["package", "--data", str(cplid_like), "--name", "x", "--reuse-stage", "defect"]
    )

    assert result.exit_code == 2
    assert "--reuse-stage wants STAGE=MODEL" in result.output
