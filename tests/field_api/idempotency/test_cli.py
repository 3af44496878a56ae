"""`fieldops idempotency purge` deletes the expired records of the configured database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from field_api.cli import app as cli
from field_api.config import get_settings
from field_api.db import make_engine, make_session_factory
from field_api.idempotency import service
from field_api.idempotency.models import IdempotencyRecord
from tests.clocks import ChinaClock


@pytest.fixture
def cli_db(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    monkeypatch.setenv("FIELDOPS_TOKEN_PEPPER", "cli-test-pepper-0123456789")
    get_settings.cache_clear()
    yield committed_url
    get_settings.cache_clear()


def test_purge_command_deletes_expired_records(cli_db: str, server_clock: ChinaClock) -> None:
    engine = make_engine(cli_db)
    factory = make_session_factory(engine)
    for key, ttl_h in (("old", 1), ("new", 72)):
        with factory.begin() as session:
            claimed = service.claim(
                session,
                scope="s",
                key=key,
                request_hash="h",
                ttl=timedelta(hours=ttl_h),
                lease=timedelta(seconds=60),
            )
            service.store(
                session,
                claimed,
                status_code=201,
                content_type=None,
                body=b"",
                ttl=timedelta(hours=ttl_h),
            )
    server_clock.advance(hours=2)
    result = CliRunner().invoke(cli, ["idempotency", "purge"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"purged": 1}
    with factory() as session:
        left = session.execute(select(IdempotencyRecord.key)).scalars().all()
        assert left == ["new"]
        assert session.execute(select(func.count()).select_from(IdempotencyRecord)).scalar() == 1
    engine.dispose()
