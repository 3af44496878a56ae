"""`fieldops network import FILE` on a real database file (the command the lead wires)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from field_api.cli.network import app
from field_api.config import get_settings
from field_api.db import make_engine, make_session_factory
from field_api.network import service

FIXTURES = Path(__file__).parents[2] / "fixtures" / "network"


@pytest.fixture
def cli_db(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    get_settings.cache_clear()
    yield committed_url
    get_settings.cache_clear()


def test_import_command_loads_the_file_and_reports(cli_db: str) -> None:
    result = CliRunner().invoke(app, ["import", str(FIXTURES / "network.geojson")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["transformers_created"] == 2
    engine = make_engine(cli_db)
    with make_session_factory(engine)() as session:
        assert service.get_by_code(session, "TX-NANSHAN-01") is not None
    engine.dispose()


def test_import_command_lists_bad_rows_and_writes_nothing(cli_db: str) -> None:
    result = CliRunner().invoke(app, ["import", str(FIXTURES / "broken.csv")])
    assert result.exit_code == 2
    assert '"row": 4' in result.output and "rated_kva must be a number > 0" in result.output
    engine = make_engine(cli_db)
    with make_session_factory(engine)() as session:
        assert service.get_by_code(session, "TX-OK-01") is None
    engine.dispose()
