"""The offline environment for Ultralytics and the CPU runtimes (without importing them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vision.offline import prepare_offline


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FIELDOPS_CACHE", str(tmp_path / "cache"))
    for name in ("YOLO_CONFIG_DIR", "YOLO_OFFLINE", "ORT_DISABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_prepare_offline_sets_env_fonts_and_settings(clean_env: Path, tmp_path: Path) -> None:
    import os

    config = prepare_offline()

    user_dir = config / "Ultralytics"
    settings = json.loads((user_dir / "settings.json").read_text(encoding="utf-8"))
    assert config == (tmp_path / "cache" / "yolo-config").resolve()
    assert os.environ["YOLO_CONFIG_DIR"] == str(config)
    assert os.environ["YOLO_OFFLINE"] == "1"
    assert os.environ["ORT_DISABLE_TELEMETRY"] == "1"
    assert (user_dir / "Arial.ttf").read_bytes()[:4] == b"\x00\x01\x00\x00"  # a TrueType font
    assert (user_dir / "Arial.Unicode.ttf").is_file()
    assert settings["sync"] is False
    assert settings["runs_dir"] == str(tmp_path / "cache" / "runs")
    assert (clean_env / "intel" / "openvino_telemetry").read_text(encoding="utf-8") == "0"


def test_prepare_offline_keeps_other_settings_and_the_users_consent(
    clean_env: Path, tmp_path: Path
) -> None:
    user_dir = tmp_path / "cfg" / "Ultralytics"
    user_dir.mkdir(parents=True)
    (user_dir / "settings.json").write_text(
        json.dumps({"sync": True, "uuid": "u1"}), encoding="utf-8"
    )
    consent = clean_env / "intel" / "openvino_telemetry"
    consent.parent.mkdir()
    consent.write_text("1", encoding="utf-8")

    prepare_offline(tmp_path / "cfg")

    settings = json.loads((user_dir / "settings.json").read_text(encoding="utf-8"))
    assert settings["uuid"] == "u1"
    assert settings["sync"] is False
    assert consent.read_text(encoding="utf-8") == "1"


def test_prepare_offline_rebuilds_a_corrupt_settings_file(clean_env: Path, tmp_path: Path) -> None:
    user_dir = tmp_path / "cfg" / "Ultralytics"
    user_dir.mkdir(parents=True)
    (user_dir / "settings.json").write_text("{not json", encoding="utf-8")

    prepare_offline(tmp_path / "cfg")

    assert json.loads((user_dir / "settings.json").read_text(encoding="utf-8"))["sync"] is False
