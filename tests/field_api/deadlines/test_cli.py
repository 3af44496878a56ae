"""`fieldops calendar due` prints the due date as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from field_api.cli.calendar import app
from field_api.common.calendar import PACKAGE_YEARS, WorkingCalendar
from field_api.config import get_settings
from field_api.db import Base, make_engine, make_session_factory
from field_api.deadlines import service
from field_api.deadlines.models import OrderDeadline
from tests.builders import make_order

runner = CliRunner()
NEXT = PACKAGE_YEARS[1] + 1


@pytest.fixture(autouse=True)
def _no_calendar_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No calendar variable set; the commands read the settings a test sets (built anew)."""
    for name in (
        "FIELDOPS_CALENDAR_OVERRIDE",
        "FIELDOPS_CALENDAR_OVERRIDE_PATH",
        "FIELDOPS_CALENDAR_STRICT",
    ):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_due_prints_json() -> None:
    result = runner.invoke(app, ["due", "--from", "2025-09-29", "--days", "5"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "due": "2025-10-13",
        "provisional": False,
        "missing_years": [],
    }


def test_due_in_uncovered_year_is_provisional() -> None:
    result = runner.invoke(app, ["due", "--from", f"{NEXT}-03-01", "--days", "5"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["provisional"] is True
    assert body["missing_years"] == [NEXT]


def test_strict_from_env_fails_with_json_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDOPS_CALENDAR_STRICT", "true")
    result = runner.invoke(app, ["due", "--from", f"{NEXT}-03-01", "--days", "5"])
    assert result.exit_code == 1
    assert json.loads(result.stderr)["error"] == "CalendarDataMissingError"


def test_override_from_env_makes_it_exact(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(f"{NEXT}:\n  complete: true\n", encoding="utf-8")
    monkeypatch.setenv("FIELDOPS_CALENDAR_OVERRIDE", str(path))
    monkeypatch.setenv("FIELDOPS_CALENDAR_STRICT", "1")
    start = date(NEXT, 3, 1)
    result = runner.invoke(app, ["due", "--from", start.isoformat(), "--days", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["provisional"] is False


def test_bad_date_is_a_usage_error() -> None:
    result = runner.invoke(app, ["due", "--from", "2025-13-01", "--days", "5"])
    assert result.exit_code == 2
    assert "not a date" in result.output


def test_recompute_makes_provisional_deadlines_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        order = make_order(session)
        order.accepted_at = datetime(NEXT - 1, 12, 28, 10, tzinfo=timezone(timedelta(hours=8)))
        service.refresh(session, order, calendar=WorkingCalendar(), as_of=date(NEXT, 1, 1))
        order_id = order.id
    override = tmp_path / "cal.yaml"
    override.write_text(f"{NEXT}:\n  complete: true\n", encoding="utf-8")
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", url)
    monkeypatch.setenv("FIELDOPS_CALENDAR_OVERRIDE_PATH", str(override))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["recompute"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"orders_recomputed": 1}
    with factory() as session:
        rows = session.execute(
            select(OrderDeadline).where(OrderDeadline.order_id == order_id)
        ).scalars()
        assert all(not r.provisional for r in rows)
    engine.dispose()
