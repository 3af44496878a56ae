"""`fieldops audit verify` catches every kind of tampering, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from field_api.cli import app as cli
from field_api.config import Settings, get_settings
from field_api.db import make_engine, make_session_factory
from tests.builders import make_crew, make_order

TAMPERING: dict[str, Callable[[Engine], None]] = {}


def tamper(name: str) -> Callable[[Callable[[Engine], None]], Callable[[Engine], None]]:
    def register(fn: Callable[[Engine], None]) -> Callable[[Engine], None]:
        TAMPERING[name] = fn
        return fn

    return register


def _sql(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement))


@tamper("event edited")
def _edit_event(engine: Engine) -> None:
    _sql(engine, "UPDATE audit_events SET action = 'tampered' WHERE seq = 3")


@tamper("event deleted in the middle")
def _delete_middle(engine: Engine) -> None:
    _sql(engine, "DELETE FROM audit_events WHERE seq = 2")


@tamper("newest event deleted")
def _delete_newest(engine: Engine) -> None:
    _sql(engine, "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)")


@tamper("event inserted")
def _insert_event(engine: Engine) -> None:
    with engine.begin() as conn:
        row = conn.execute(text("SELECT at, prev_hash FROM audit_events WHERE seq = 2")).one()
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, at, actor_id, actor_role, action, entity_type,"
                " entity_id, row_hash, prev_hash, hash) VALUES (100, :at, NULL, 'system',"
                " 'forged', 'work_orders', '1', NULL, :prev, :h)"
            ),
            {"at": row.at, "prev": row.prev_hash, "h": "f" * 64},
        )


@tamper("audited row edited")
def _edit_row(engine: Engine) -> None:
    _sql(engine, "UPDATE work_orders SET capacity_kw = 99")


@pytest.fixture
def populated(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    get_settings.cache_clear()
    engine = make_engine(committed_url)
    with make_session_factory(engine).begin() as session:
        crew = make_crew(session)
        make_order(session, crew=crew)
    yield engine
    engine.dispose()
    get_settings.cache_clear()


def _verify() -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify"])
    return result.exit_code, result.output


def test_untouched_chain_verifies(populated: Engine) -> None:
    code, out = _verify()
    assert code == 0, out
    assert "audit chain ok" in out


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_detected(populated: Engine, kind: str) -> None:
    TAMPERING[kind](populated)
    code, out = _verify()
    assert code == 1
    assert "BROKEN" in out


def test_settings_refuse_dev_defaults_in_production() -> None:
    with pytest.raises(ValueError, match="development default"):
        Settings(env="production")
    ok = Settings(
        env="production",
        token_pepper="p" * 32,
        database_url="postgresql+psycopg://u:p@127.0.0.1/db",
    )
    assert ok.is_production
