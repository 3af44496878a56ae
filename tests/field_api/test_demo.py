"""Demo data: the walk-through's orders, each at its stage with the evidence that stage implies,
loaded twice without duplicates, refused in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api import demo
from field_api.auth.models import User
from field_api.config import Settings
from field_api.contracts import service as contracts
from field_api.errors import ValidationFailed
from field_api.kits import service as kits
from field_api.media import service as media
from field_api.schemes import service as schemes
from field_api.visits import service as visits
from field_api.visits.models import VisitOutcome
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import FLOW, Stage
from tests.sms_support import production_sms


def test_demo_load_twice_duplicates_nothing(session: Session, settings: Settings) -> None:
    first = demo.load(session, settings=settings)
    second = demo.load(session, settings=settings)
    assert first.orders_created == 12 and second.orders_created == 0
    assert session.scalar(select(func.count()).select_from(WorkOrder)) == 12
    # one user per role with its development token, and the third crew's member
    assert session.scalar(select(func.count()).select_from(User)) == len(demo.USERS) + 1
    from field_api.network import service as network

    assert network.get_by_code(session, "TX-DEMO-01") is not None
    for code, _ in demo.DEPOTS.values():
        depot = kits.get_depot_by_code(session, code)
        assert depot is not None and len(kits.stock_of(session, depot)) > 10
    stages = {o.stage.value for o in session.scalars(select(WorkOrder))}
    assert {"accepted", "energised", "closed", "whitelisted", "cancelled"} <= stages


def test_showcase_orders_carry_the_evidence_of_their_stage(
    session: Session, settings: Settings
) -> None:
    demo.load(session, settings=settings)
    by_key = {o.customer_id_number: o for o in session.scalars(select(WorkOrder))}
    for key, _name, _cat, _kw, _phases, _crew, target in demo.ORDERS:
        order = by_key[key]
        assert order.stage == target, key
        reached = FLOW.index(target) if target in FLOW else FLOW.index(Stage.surveyed)
        if target in (Stage.accepted, Stage.cancelled):
            assert visits.visits_of(session, order.id) == []
            continue
        history = visits.visits_of(session, order.id)
        assert history and all(v.departed_at is not None for v in history), key
        assert media.photo_counts(session, order.id).get("site", 0) >= 1
        has_scheme = schemes.accepted_for_order(session, order.id) is not None
        assert has_scheme == (reached >= FLOW.index(Stage.scheme_answered)), key
        signed = contracts.is_signed(session, order.id)
        assert signed == (reached >= FLOW.index(Stage.contract_signed)), key
        issued = kits.issued_for_order(session, order.id) is not None
        assert issued == (reached >= FLOW.index(Stage.installed)), key
        if reached >= FLOW.index(Stage.energised):
            # connected in one visit: the planner's one-visit report counts it
            assert [v.outcome for v in history] == [VisitOutcome.completed], key
            assert media.latest_barcode(session, order.id) is not None


def test_demo_refused_in_production(session: Session, tmp_path: Path) -> None:
    prod = Settings(
        env="production",
        sms=production_sms(tmp_path),
        token_pepper="p" * 32,
        public_base_url="https://connect.example.com",
        database_url="postgresql+psycopg://x@127.0.0.1/x",
    )
    with pytest.raises(ValidationFailed):
        demo.load(session, settings=prod)
