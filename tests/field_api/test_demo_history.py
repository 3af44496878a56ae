"""The demo's history: seeded (the same rows twice), idempotent, audited, and believable to a
planner (one-visit rate, first-pass failures, missed deadlines, a trend over months)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from field_api import demo
from field_api.auth.rules import DEMO_TOKENS
from field_api.callbacks.models import ReviewFlag
from field_api.checklists import service as checklists
from field_api.cli import app as cli
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings, get_settings
from field_api.db import Base, make_engine, make_session_factory
from field_api.deadlines import service as deadlines
from field_api.demo import reliability as demo_reliability
from field_api.main import create_app
from field_api.reliability.models import (
    Customer,
    FeederSection,
    Outage,
    OutageSegment,
    RegisterSnapshot,
)
from field_api.reliability.rules import Area, OutageKind
from field_api.visits import service as visits
from field_api.visits.models import Visit
from field_api.work_orders.models import StageTransition, WorkOrder
from field_api.work_orders.rules import Stage

# A fixed "now" (10:00 in China on a Friday): the seeded history is then the same on every run.
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)

# Columns (and keys inside JSON columns) whose values are random by design: tokens, one-time
# codes, the installation's signing key and what it signs, the SMS outbox's ciphertexts (a
# random nonce each). Every other column of every business table is compared.
RANDOM_BY_DESIGN = re.compile(
    r"token|otp|proof|code_hash|salt|^signature$|file_sha256|key_id|secret|nonce|envelope|_ct$"
)
SKIPPED_TABLES = re.compile(r"^(audit|api_token|lease|idempotency)")


@pytest.fixture
def fixed_clock() -> Iterator[clock.ManualClock]:
    with clock.use_clock(clock.ManualClock(NOW)) as installed:
        assert isinstance(installed, clock.ManualClock)
        yield installed


def _settings(root: Path, url: str) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        media_dir=root / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=root / "keys" / "signing.key",
        audit_checkpoint_dir=root / "audit-checkpoints",
    )


def _digest(engine: Engine) -> tuple[str, int]:
    """sha256 over every business row (ids included: both databases are fresh)."""
    h = hashlib.sha256()
    rows = 0
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if SKIPPED_TABLES.match(table.name):
                continue
            columns = [c for c in table.columns if not RANDOM_BY_DESIGN.search(c.name)]
            order = list(table.primary_key.columns) or columns
            for row in conn.execute(select(*columns).order_by(*order)):
                h.update(table.name.encode())
                h.update(json.dumps([_scrub(v) for v in row], ensure_ascii=False).encode())
                rows += 1
    return h.hexdigest(), rows


def _scrub(value: object) -> object:
    """The value as text, JSON objects without their random-by-design keys."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if not RANDOM_BY_DESIGN.search(k)}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return str(value)


def _fresh_load(root: Path, months: int) -> tuple[str, int]:
    root.mkdir()
    settings = _settings(root, f"sqlite:///{root}/demo.db")
    engine = make_engine(settings.database_url)
    Base.metadata.create_all(engine)
    with make_session_factory(engine).begin() as session:
        demo.load(session, settings=settings, months=months)
    try:
        return _digest(engine)
    finally:
        engine.dispose()


def test_two_fresh_databases_get_the_same_history(
    tmp_path: Path, fixed_clock: clock.ManualClock
) -> None:
    first, rows = _fresh_load(tmp_path / "one", months=1)
    fixed_clock.set(NOW)  # the second load starts at the same moment
    second, _ = _fresh_load(tmp_path / "two", months=1)
    assert rows > 500  # orders, transitions, visits, photos, schemes, contracts, checks, ...
    assert first == second


@pytest.fixture
def cli_db(committed_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    monkeypatch.setenv("FIELDOPS_TOKEN_PEPPER", "cli-test-pepper-0123456789")
    monkeypatch.setenv("FIELDOPS_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("FIELDOPS_SIGNING_KEY_PATH", str(tmp_path / "keys" / "signing.key"))
    monkeypatch.setenv("FIELDOPS_AUDIT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    get_settings.cache_clear()
    yield committed_url
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_cli_history_is_audited_idempotent_and_believable(
    cli_db: str, fixed_clock: clock.ManualClock
) -> None:
    code, out = _run("demo", "load", "--months", "3")
    assert code == 0, out
    created = int(re.search(r"\((\d+) new work orders", out).group(1))  # type: ignore[union-attr]
    assert created > 30 and re.search(r"in \d+\.\d s", out)
    code, out = _run("audit", "verify")
    assert code == 0, out
    code, out = _run("demo", "load", "--months", "3")
    assert code == 0 and "(0 new work orders" in out, out

    engine = make_engine(cli_db)
    try:
        with Session(engine) as session:
            _assert_believable(session, created)
            _assert_reliability(session)
    finally:
        engine.dispose()
    _assert_indices_answer()
    _assert_compensation_answer()


def _assert_believable(session: Session, created: int) -> None:
    assert session.scalar(select(func.count()).select_from(WorkOrder)) == created
    today = clock.to_china(NOW).date()
    since = today - timedelta(days=100)
    overall = visits.one_visit_rate(session, date_from=since, date_to=today)[0]
    assert overall.code == "all" and overall.energised > 20
    assert overall.rate is not None and 0.6 < overall.rate < 1.0  # most, not all, in one visit
    # every energised order was visited (the old demo energised orders without any visit)
    energised = session.scalars(
        select(StageTransition.order_id).where(StageTransition.to_stage == Stage.energised)
    ).all()
    visited = set(session.scalars(select(Visit.order_id)).all())
    assert set(energised) <= visited
    first = checklists.first_pass(session, date_from=since, date_to=today, group_by="crew")
    assert {r.code for r in first} >= {"CREW-A", "CREW-B", "CREW-C"}
    checked = sum(r.checked for r in first)
    passed_first = sum(r.passed_first for r in first)
    assert 0.6 * checked < passed_first < checked  # some checks fail first and are reworked
    admin = Principal(user_id=1, name="admin", role=Role.admin)
    summary = deadlines.compliance(session, admin, period_from=since, period_to=today)
    assert sum(c.missed for c in summary) > 0 and sum(c.met for c in summary) > 0
    months = {
        (d.year, d.month)
        for d in session.scalars(
            select(StageTransition.at).where(StageTransition.to_stage == Stage.energised)
        )
    }
    assert len(months) >= 3  # a trend of several months, not one point
    stages = set(session.scalars(select(WorkOrder.stage)))
    assert {Stage.closed, Stage.called_back, Stage.whitelisted, Stage.cancelled} <= stages
    flags = session.scalar(select(func.count()).select_from(ReviewFlag))
    assert flags is not None and flags > 0


def _assert_reliability(session: Session) -> None:
    """The register, sections, monthly snapshots and outages the demo writes for its months."""
    assert session.scalar(select(func.count()).select_from(FeederSection)) == len(
        demo_reliability.SECTIONS
    )
    customers = session.scalar(select(func.count()).select_from(Customer))
    assert customers is not None and 300 <= customers <= 500
    assert set(session.scalars(select(Customer.area))) == {Area.urban, Area.rural}
    snapshot_months = set(session.scalars(select(RegisterSnapshot.month)))
    assert len(snapshot_months) >= 3  # one per month of history, the current one included
    found = list(session.scalars(select(Outage)))
    assert {o.kind for o in found} == {OutageKind.planned, OutageKind.fault}
    assert len({o.cause for o in found}) >= 3
    open_now = [o for o in found if o.end_at is None]
    assert len(open_now) == 1 and open_now[0].approved_at is None
    closed = [o for o in found if o.end_at is not None]
    assert closed and all(o.approved_at is not None for o in closed)
    minutes = [(o.end_at - o.start_at).total_seconds() / 60 for o in closed if o.end_at]
    assert any(m < 3 for m in minutes) and any(3 <= m <= 5 for m in minutes)
    restored: dict[int, set[object]] = {}
    for segment in session.scalars(select(OutageSegment)):
        restored.setdefault(segment.outage_id, set()).add(segment.restored_at)
    assert any(len(times) > 1 for times in restored.values())  # restored in steps


def _assert_indices_answer() -> None:
    """GET /reliability/indices for the demo year: figures for every area, urban near its
    target, rural below its own."""
    year = clock.to_china(NOW).year
    with TestClient(create_app()) as client:
        response = client.get(
            "/reliability/indices", params={"year": year},
            headers={"Authorization": f"Bearer {DEMO_TOKENS['planner']}"},
        )
    assert response.status_code == 200, response.text
    areas = {s["area"]: s for s in response.json()["scopes"] if s["scope"] == "area"}
    urban, rural = areas["urban"]["ytd"], areas["rural"]["ytd"]
    assert urban["customer_interruptions"] > 0 and rural["customer_interruptions"] > 0
    assert 0.5 < urban["saidi_h"] < areas["urban"]["target_h"] * 1.5
    assert 0.5 < rural["saidi_h"] < areas["rural"]["target_h"]


def _assert_compensation_answer() -> None:
    """GET /reliability/compensation on a development server without a policy file: the
    labelled demo policy, and the demo's outages are owed something."""
    with TestClient(create_app()) as client:
        response = client.get(
            "/reliability/compensation",
            headers={"Authorization": f"Bearer {DEMO_TOKENS['planner']}"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["policy"]["source"] == "development_default"
    assert Decimal(body["overall"]["total"]) > 0 and body["totals"]
