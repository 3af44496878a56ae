"""The service's commands: users, crews, districts, demo data, on a real database file."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from field_api.auth.models import ApiToken
from field_api.auth.rules import hash_token
from field_api.cli import app as cli
from field_api.config import get_settings
from field_api.db import make_engine, make_session_factory


@pytest.fixture
def cli_db(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    monkeypatch.setenv("FIELDOPS_TOKEN_PEPPER", "cli-test-pepper-0123456789")
    get_settings.cache_clear()
    yield committed_url
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_users_add_prints_token_once_and_stores_only_its_hash(cli_db: str) -> None:
    assert run("districts", "add", "--code", "D1", "--name", "一区", "--lv-ceiling-kw", "200")[0] == 0
    assert run("crews", "add", "--code", "C1", "--name", "一班", "--district", "D1")[0] == 0
    code, out = run("users", "add", "--name", "李工", "--role", "crew", "--crew", "C1")
    assert code == 0, out
    token = json.loads(out)["token"]
    assert token.startswith("fo_")
    engine = make_engine(cli_db)
    with make_session_factory(engine)() as session:
        stored = session.execute(select(ApiToken.token_hash)).scalars().all()
    engine.dispose()
    assert stored == [hash_token(token, pepper="cli-test-pepper-0123456789")]
    assert token not in stored


def test_users_add_refuses_unknown_role_and_missing_crew(cli_db: str) -> None:
    code, out = run("users", "add", "--name", "x", "--role", "wizard")
    assert code == 2 and "unknown role" in out
    code, out = run("users", "add", "--name", "x", "--role", "crew")
    assert code == 2
    assert json.loads(out.strip().splitlines()[-1])["error"] == "ValidationFailed"


def test_crews_add_needs_a_known_district(cli_db: str) -> None:
    code, out = run("crews", "add", "--code", "C9", "--name", "九班", "--district", "NOPE")
    assert code == 2
    assert "unknown district NOPE" in out
