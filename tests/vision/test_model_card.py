"""Model card: schema, loading, sha256 verification of the weight files."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from vision.errors import ModelCardError, ModelIntegrityError
from vision.hashing import sha256_file
from vision.train.model_card import (
    dump_card,
    hash_weights,
    load_card,
    resolve_model,
    verify_files,
    with_thresholds,
    with_val_metrics,
)

EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _card(sha: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "tiny-cascade",
        "version": 1,
        "kind": "cascade",
        "classes": [
            {"id": 0, "name": "insulator", "role": "asset_marker", "severity": 0},
            {"id": 1, "name": "defect", "role": "defect", "severity": 3},
        ],
        "stages": {
            "insulator": {
                "weights": "insulator.pt",
                "openvino": "insulator_openvino_model",
                "imgsz": 320,
                "conf": 0.25,
                "iou": 0.6,
                "classes": ["insulator"],
            },
            "defect": {
                "weights": "defect.pt",
                "imgsz": 320,
                "tile_px": 320,
                "tile_overlap": 0.25,
                "conf": 0.3,
                "iou": 0.5,
                "classes": ["defect"],
            },
        },
        "conf_threshold": {"defect": 0.35},
        "sha256": sha,
        "training": {"data": "d", "selection": "v", "seed": 0, "command": "fieldops vision train"},
    }


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-cascade"
    folder.mkdir()
    (folder / "insulator.pt").write_bytes(b"insulator weights")
    (folder / "defect.pt").write_bytes(b"defect weights")
    ov = folder / "insulator_openvino_model"
    ov.mkdir()
    (ov / "insulator.xml").write_text("<net/>", encoding="utf-8")
    (ov / "insulator.bin").write_bytes(b"\x00\x01")
    (ov / "metadata.yaml").write_text("x: 1", encoding="utf-8")
    sha = hash_weights(folder, ["insulator.pt", "defect.pt", "insulator_openvino_model"])
    (folder / "card.yaml").write_text(yaml.safe_dump(_card(sha)), encoding="utf-8")
    return folder


def test_sha256_of_a_known_content(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")

    assert sha256_file(empty) == EMPTY_SHA


def test_openvino_folder_hashes_its_xml_and_bin(model_dir: Path) -> None:
    hashed = hash_weights(model_dir, ["insulator_openvino_model"])

    assert sorted(hashed) == [
        "insulator_openvino_model/insulator.bin",
        "insulator_openvino_model/insulator.xml",
    ]


def test_load_card_resolves_paths_and_thresholds(model_dir: Path) -> None:
    card = load_card(model_dir)

    assert card.directory == model_dir.resolve()
    assert (
        card.stage_path("insulator", "openvino") == model_dir.resolve() / "insulator_openvino_model"
    )
    assert card.stage_path("defect") == model_dir.resolve() / "defect.pt"
    assert card.threshold("defect") == 0.35  # chosen on val, wins over the stage default
    assert card.threshold("insulator") == 0.25  # falls back to the stage's conf
    assert card.class_by_name("defect").severity == 3
    assert load_card(model_dir / "card.yaml").name == "tiny-cascade"


def test_the_int8_network_is_its_own_backend(model_dir: Path) -> None:
    card = load_card(model_dir)
    with pytest.raises(ModelCardError, match="no openvino-int8 export"):
        card.stage_path("insulator", "openvino-int8")

    stage = card.stages["insulator"].model_copy(
        update={"openvino_int8": "insulator_int8_openvino_model"}
    )
    assert stage.file_for("openvino-int8") == "insulator_int8_openvino_model"
    assert stage.file_for("openvino") == "insulator_openvino_model"


def test_changed_weight_file_raises_integrity_error(model_dir: Path) -> None:
    (model_dir / "defect.pt").write_bytes(b"someone else's weights")

    with pytest.raises(ModelIntegrityError, match=r"defect\.pt does not match"):
        load_card(model_dir)


def test_changed_openvino_bin_raises_integrity_error(model_dir: Path) -> None:
    (model_dir / "insulator_openvino_model" / "insulator.bin").write_bytes(b"\x00")

    with pytest.raises(ModelIntegrityError, match=r"insulator\.bin"):
        load_card(model_dir)


def test_missing_weight_file_raises_integrity_error(model_dir: Path) -> None:
    (model_dir / "insulator.pt").unlink()

    with pytest.raises(ModelIntegrityError, match="missing"):
        load_card(model_dir)


def test_verify_can_be_limited_to_one_backend(model_dir: Path) -> None:
    card = load_card(model_dir)
    (model_dir / "defect.pt").write_bytes(b"tampered")

    verify_files(model_dir, card.sha256, only=["insulator_openvino_model"])
    with pytest.raises(ModelIntegrityError):
        verify_files(model_dir, card.sha256, only=["defect.pt"])


def test_integrity_error_is_a_model_card_error() -> None:
    assert issubclass(ModelIntegrityError, ModelCardError)


def _mutated(model_dir: Path, change: Any) -> Path:
    raw = yaml.safe_load((model_dir / "card.yaml").read_text(encoding="utf-8"))
    new = copy.deepcopy(raw)
    change(new)
    (model_dir / "card.yaml").write_text(yaml.safe_dump(new), encoding="utf-8")
    return model_dir


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["classes"].pop(0), "0..0 without gaps"),
        (lambda c: c["classes"][1].update(role="rust"), "role"),
        (lambda c: c["stages"].pop("defect"), "stages"),
        (lambda c: c["stages"]["defect"].pop("tile_px"), "tile_px"),
        (lambda c: c["stages"]["defect"].update(classes=["nest"]), "unknown classes"),
        (lambda c: c["sha256"].pop("defect.pt"), "lacks the weights"),
        (lambda c: c["sha256"].update({"defect.pt": "abc"}), "64 lowercase hex"),
        (lambda c: c.update(kind="single"), "stages"),
        (lambda c: c.update(surprise=1), "surprise"),
    ],
)
def test_schema_violations_raise_model_card_error(
    model_dir: Path, change: Any, message: str
) -> None:
    _mutated(model_dir, change)

    with pytest.raises(ModelCardError, match=message):
        load_card(model_dir)


def test_missing_or_broken_card_file(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match="no model card"):
        load_card(tmp_path)
    (tmp_path / "card.yaml").write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(ModelCardError, match="not valid YAML"):
        load_card(tmp_path)
    (tmp_path / "card.yaml").write_text("- a list", encoding="utf-8")
    with pytest.raises(ModelCardError, match="mapping"):
        load_card(tmp_path)


def test_dump_then_load_round_trips(model_dir: Path, tmp_path: Path) -> None:
    card = load_card(model_dir)
    dump_card(card, model_dir)

    again = load_card(model_dir)

    assert again == card
    assert not list(model_dir.glob(".*.tmp"))


def test_evaluate_results_are_recorded_at_the_cards_thresholds(model_dir: Path) -> None:
    card = load_card(model_dir)
    row = {"precision": 0.9, "recall": 0.95, "ap50": 0.93, "ap50_95": 0.6, "tp": 19, "fp": 2,
           "fn": 1, "ground_truth": 20}
    classes = {
        "insulator": {**row, "max_f1": None},
        "defect": {**row, "image_recall": 1.0, "max_f1": {"threshold": 0.4, "f1": 0.92}},
        "tree": {"precision": 0.0, "recall": None, "ap50": None, "ap50_95": None},
    }

    updated = with_val_metrics(card, classes)
    dump_card(updated, model_dir)
    again = load_card(model_dir)

    assert set(again.metrics.val) == {"insulator", "defect"}  # no ground truth: not recorded
    defect = again.metrics.val["defect"]
    assert (defect.precision, defect.recall, defect.ap50) == (0.9, 0.95, 0.93)
    assert defect.model_extra == {
        "conf": 0.35, "tp": 19, "fp": 2, "fn": 1, "image_recall": 1.0,
        "max_f1": {"threshold": 0.4, "f1": 0.92},
    }
    assert again.metrics.val["insulator"].model_extra == {"conf": 0.25, "tp": 19, "fp": 2, "fn": 1}
    assert card.metrics.val == {}  # the original is left as it was


def test_f32_figures_are_kept_beside_the_int8_ones_and_shown(model_dir: Path) -> None:
    from vision.train.model_card import render_readme

    card = load_card(model_dir)
    int8 = {"precision": 0.9, "recall": 0.95, "ap50": 0.93, "ap50_95": 0.6}
    f32 = {"precision": 0.8, "recall": 0.85, "ap50": 0.83, "ap50_95": 0.5}

    updated = with_val_metrics(with_val_metrics(card, {"defect": int8}),
                               {"defect": f32}, key="val_openvino_f32")
    dump_card(updated, model_dir)
    again = load_card(model_dir)

    assert again.metrics.val["defect"].ap50 == 0.93
    assert (again.metrics.model_extra or {})["val_openvino_f32"]["defect"]["ap50"] == 0.83
    text = render_readme(again)
    assert "| defect | 0.35 | 0.900 | 0.950 | 0.930 | 0.600 |" in text
    assert "f32 OpenVINO networks" in text
    assert "| defect | 0.35 | 0.800 | 0.850 | 0.830 | 0.500 |" in text


def test_thresholds_chosen_on_val_move_outputs_but_not_the_cascade_gate(
    model_dir: Path,
) -> None:
    card = load_card(model_dir)

    updated = with_thresholds(card, {"insulator": 0.4, "defect": 0.6123456}, "max-F1 on val")
    dump_card(updated, model_dir)
    again = load_card(model_dir)

    assert again.conf_threshold == {"defect": 0.6123, "insulator": 0.4}
    assert again.stages["defect"].conf == 0.6123  # decodes down to its output threshold
    assert again.stages["insulator"].conf == 0.25  # the gate of the cascade is kept
    assert (again.training.model_extra or {})["threshold_selection"] == "max-F1 on val"
    with pytest.raises(ModelCardError, match="tree"):
        with_thresholds(card, {"tree": 0.5}, "x")


def test_resolve_model_by_name_or_path(model_dir: Path) -> None:
    assert (
        resolve_model("tiny-cascade", models_dir=model_dir.parent)
        == model_dir.parent / "tiny-cascade"
    )
    assert resolve_model(str(model_dir), models_dir=Path("/nonexistent")) == model_dir
    with pytest.raises(ModelCardError, match="tiny-cascade"):
        resolve_model("nope", models_dir=model_dir.parent)


def test_readme_lists_classes_stages_hashes_and_pending_figures(model_dir: Path) -> None:
    from vision.train.model_card import render_readme

    card = load_card(model_dir)

    text = render_readme(card, notes="Trained on a busy machine.")

    assert "| 1 | defect | defect | 3 | 0.35 |" in text
    assert "| defect | 320 | 320 px, overlap 0.25 | 0.3 | 0.5 |" in text
    assert f"`{card.sha256['defect.pt']}`" in text
    assert "Pipeline on val: pending" in text
    assert text.rstrip().endswith("Trained on a busy machine.")
