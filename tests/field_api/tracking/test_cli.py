"""`fieldops webhooks send` drains the outbox of the configured database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from field_api.cli.webhooks import app
from field_api.config import get_settings
from field_api.db import Base, make_engine, make_session_factory
from field_api.tracking import service as tracking
from field_api.tracking.rules import EventType
from field_api.work_orders import service as orders
from field_api.work_orders.rules import Stage
from tests.builders import make_order
from tests.clocks import ChinaClock

from .conftest import Receiver


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", url)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_send_command_delivers_the_outbox(
    db_file: str, clock: ChinaClock, receiver: Receiver
) -> None:
    engine = make_engine(db_file)
    Base.metadata.create_all(engine)
    with make_session_factory(engine).begin() as session:
        tracking.create_subscription(
            session,
            name="crm",
            url=receiver.url,
            events=[EventType.stage_changed],
            actor=None,
            allow_http=True,
        )
        order = make_order(session)
        orders.transition(session, order, Stage.surveyed, actor=None)
        orders.transition(session, order, Stage.scheme_answered, actor=None)
    engine.dispose()
    result = CliRunner().invoke(app, ["send"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"delivered": 2, "failed": 0, "dead": 0}
    assert len(receiver.requests) == 2
