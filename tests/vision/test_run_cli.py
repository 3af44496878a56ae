"""``fieldops vision run`` and ``fieldops vision locate`` through the typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vision.cli.run import app

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "drone"
runner = CliRunner()


def test_locate_prints_camera_centre_and_uncertainty() -> None:
    result = runner.invoke(app, ["locate", str(FIXTURES / "phantom3_nadir_0018.jpg")])

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"camera", "center", "uncertainty_m"}
    # Nadir (pitch -89.9) from 39.8 m: the centre is within a few cm of the camera.
    assert out["camera"] == {"lat": pytest.approx(46.8426071), "lon": pytest.approx(-91.9945599)}
    assert out["center"]["lat"] == pytest.approx(out["camera"]["lat"], abs=1e-6)
    assert out["center"]["lon"] == pytest.approx(out["camera"]["lon"], abs=1e-6)
    assert 3.0 <= out["uncertainty_m"] < 5.0


def test_locate_oblique_photo_looks_ahead_along_the_gimbal_heading() -> None:
    result = runner.invoke(app, ["locate", str(FIXTURES / "h20t_oblique.jpg")])

    out = json.loads(result.stdout)
    # Gimbal yaw 32.5°: the centre lies north-east of the camera, ~89 m away at pitch -10.5°.
    assert out["center"]["lat"] > out["camera"]["lat"]
    assert out["center"]["lon"] > out["camera"]["lon"]
    assert out["uncertainty_m"] > 10.0


def test_locate_photo_without_attitude_fails_cleanly() -> None:
    result = runner.invoke(app, ["locate", str(FIXTURES / "xts_no_dji_xmp.jpg")])

    assert result.exit_code == 2
    assert "error:" in result.stderr and "gimbal" in result.stderr


def test_run_with_unknown_model_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(FIXTURES), "--ledger", str(FIXTURES / "ledger.csv"),
                                 "--out", str(tmp_path / "out"), "--model", "no-such-model"])

    assert result.exit_code == 2
    assert "unknown model" in result.stderr
    assert not (tmp_path / "out").exists()


def _random_model(folder: Path) -> Path:
    """A one-stage model card over a random-weight yolo11n (nothing downloaded)."""
    from vision.detect.inference import save_untrained_weights
    from vision.train.model_card import hash_weights

    save_untrained_weights(folder / "net.pt", ["insulator", "defect"])
    card = {
        "name": "random-single", "version": 1, "kind": "single",
        "classes": [
            {"id": 0, "name": "insulator", "role": "asset_marker", "severity": 0},
            {"id": 1, "name": "defect", "role": "defect", "severity": 3},
        ],
        "stages": {"main": {"weights": "net.pt", "imgsz": 160, "conf": 0.001, "iou": 0.5,
                            "classes": ["insulator", "defect"]}},
        "conf_threshold": {"insulator": 0.001, "defect": 0.001},
        "sha256": hash_weights(folder, ["net.pt"]),
        "training": {"data": "none (random weights)", "selection": "none", "seed": 0,
                     "command": "save_untrained_weights"},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return folder


def test_run_with_the_real_detector_writes_a_batch(tmp_path: Path) -> None:
    pytest.importorskip("ultralytics")
    model = _random_model(tmp_path / "model")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("phantom3_nadir_0018.jpg", "phantom3_nadir_0025.jpg"):
        (photos / name).write_bytes((FIXTURES / name).read_bytes())

    result = runner.invoke(app, [
        "run", str(photos), "--ledger", str(FIXTURES / "ledger.geojson"),
        "--out", str(tmp_path / "out"), "--model", str(model), "--backend", "torch",
        "--threads", "1", "--lang", "en",
    ])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["photos"] == 2 and summary["processed"] == 2
    assert summary["counts"]["inspected"] >= 2
    records = (tmp_path / "out" / "records.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in records]
    assert kinds.count("photo") == 2
    assert kinds.count("detection") == summary["detections"]
    state = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert state["model"] == "random-single@1"
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "Inspection batch" in html


def test_run_with_an_unknown_report_language_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(FIXTURES), "--ledger", str(FIXTURES / "ledger.csv"),
                                 "--out", str(tmp_path / "out"), "--lang", "fr"])

    assert result.exit_code == 2
    assert "unknown report language 'fr': use zh-CN, en" in result.stderr
    assert not (tmp_path / "out").exists()


def test_check_ledger_reports_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(
        "Identifier,Name,GroupIdentifier,Latitude,Longitude\n"
        "A1,Pole 1,L1,30.0,120.0\nA1,Pole 1 again,L1,30.001,120.0\n",
        encoding="utf-8",
    )

    result = runner.invoke(app, ["check-ledger", str(path)])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["assets"] == 1
    assert report["issues"] == [{"source": "ledger.csv", "row": 3, "Identifier": "A1",
                                 "problem": "duplicate_id",
                                 "message": report["issues"][0]["message"]}]
    assert "row 2" in report["issues"][0]["message"]
