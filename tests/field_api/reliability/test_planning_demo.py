"""Six months of demo history give the budget page meaningful figures, written through the
planning services (audited): budgets for both demo districts, planned outages that went
through requests and happened, an overspend approved with its reason, a merge, a merge
proposal and live-line work."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from field_api import demo
from field_api.audit import keys as audit_keys
from field_api.audit import service as audit_service
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.db import Base, make_engine, make_session_factory
from field_api.demo import outage_planning
from field_api.reliability import merging, planning
from field_api.reliability.models import Outage

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


@pytest.fixture
def fixed_clock() -> Iterator[clock.ManualClock]:
    with clock.use_clock(clock.ManualClock(NOW)) as installed:
        assert isinstance(installed, clock.ManualClock)
        yield installed


def test_the_demo_history_fills_the_budget_page(tmp_path: Path, fixed_clock: object) -> None:
    settings = Settings(
        env="test", database_url=f"sqlite:///{tmp_path}/demo.db", media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789", signing_key_path=tmp_path / "keys" / "signing.key",
        audit_checkpoint_dir=tmp_path / "audit-checkpoints",
    )
    audit_keys.install(settings)
    engine = make_engine(settings.database_url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    try:
        with factory.begin() as session:
            demo.load(session, settings=settings, months=6)
        with factory() as session:
            planner = Principal(user_id=1, name="planner", role=Role.planner)
            board = merging.dashboard(session, settings, planner, year=2026)
            requests = planning.all_requests(session, settings, planner)
            assert audit_service.verify(session) == []
            outages = {o.id: o for o in session.query(Outage)}
    finally:
        engine.dispose()
    by_district = {d.district: d for d in board.districts}
    assert set(by_district) == {"SZ-NS", "SZ-FT"}
    assert all(d.budget_customer_hours > 0 for d in by_district.values())
    ns = by_district["SZ-NS"]
    assert ns.used_customer_hours > ns.budget_customer_hours  # the overspend shows
    assert ns.live_line_customer_hours_avoided > 0 and ns.live_line_share is not None
    happened = [r for r in requests if r.outage_id is not None]
    assert happened and all(outages[r.outage_id].end_at is not None for r in happened
                            if r.outage_id is not None)
    assert all(outages[r.outage_id].approved_at is not None for r in happened
               if r.outage_id is not None)
    [over] = [r for r in requests if r.overspend_reason]
    assert over.overspend_reason == outage_planning.OVERSPEND_REASON
    [host] = [r for r in requests if len(r.works) > 1]
    assert host.state == "approved" and {w.requester for w in host.works} >= {"蛇口供电所 李工"}
    [proposal] = board.proposals
    assert proposal.switch_code == "SW-FT-101" and proposal.saved_customer_hours > 0
