"""`fieldops serve` configures logging: the service's own INFO lines reach the console at the
settings' log level (FIELDOPS_LOG_LEVEL), redacted, and stay away above it."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from field_api import cli
from field_api.config import get_settings

# A separate interpreter applies the configuration exactly as uvicorn does (dictConfig), so
# this process's logging (pytest's capture) is left alone.
PROBE = """
import logging.config, sys
from field_api.logs import uvicorn_log_config
logging.config.dictConfig(uvicorn_log_config(sys.argv[1]))
log = logging.getLogger("field_api.sms.gateways")
log.info("info line: SMS to %s", "13812345678")
log.warning("warning line")
logging.getLogger("uvicorn.error").info("uvicorn line")
"""


def _console(level: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, level], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout + done.stderr


def test_service_info_lines_reach_the_console_at_info() -> None:
    console = _console("info")
    assert "INFO:     info line: SMS to *******5678" in console  # masked on its way out
    assert "13812345678" not in console
    assert "WARNING:  warning line" in console
    assert "uvicorn line" in console


def test_service_info_lines_stay_away_at_warning() -> None:
    console = _console("WARNING")
    assert "info line" not in console
    assert "WARNING:  warning line" in console


def test_serve_passes_the_settings_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("FIELDOPS_LOG_LEVEL", "warning")
    # serve names its own address for tracking links when none is set: restored after the test
    monkeypatch.setenv("FIELDOPS_PUBLIC_BASE_URL", "")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["serve", "--port", "0"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    config = seen["log_config"]
    assert config["loggers"]["field_api"] == {
        "handlers": ["default"],
        "level": "WARNING",
        "propagate": False,
    }
    assert seen["host"] == "127.0.0.1"
    assert os.environ["FIELDOPS_PUBLIC_BASE_URL"] == "http://127.0.0.1:0"
