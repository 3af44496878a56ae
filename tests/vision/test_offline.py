"""The offline environment for Ultralytics and the CPU runtimes (without importing them)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from vision.offline import prepare_offline, tracing_warnings_ignored


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


def _trace_a_shape_check() -> None:
    torch = pytest.importorskip("torch")

    def head(x: Any) -> Any:
        # the kind of check Ultralytics' Detect head makes: a Python bool of a traced tensor
        return x * 2 if bool(x.sum() > 0) else x

    torch.jit.trace(head, torch.ones(2, 2))


@pytest.mark.filterwarnings("error")
def test_export_tracing_warnings_are_silenced_only_inside_the_guard() -> None:
    # Under warnings-as-errors the tracer's warning escapes from C code as a SystemError (what
    # broke an export in CI); inside the guard the same trace runs.
    with pytest.raises((SystemError, Warning)):
        _trace_a_shape_check()
    with tracing_warnings_ignored():
        _trace_a_shape_check()
    with pytest.raises(UserWarning, match="other"), tracing_warnings_ignored():
        warnings.warn("other warnings still surface", UserWarning, stacklevel=1)
