"""Visits on a real database: arrival, the one-visit walk, departure, one-visit statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.auth.models import Crew, District
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Conflict, Forbidden
from field_api.visits import service
from field_api.visits.models import VisitOutcome
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import make_crew, make_district, make_order, make_user
from tests.field_api.visits.builders import make_evidence, make_photos, make_scheme

# builders.order_payload puts the order at 22.5333 N, 113.9305 E.
NEAR = {"lat": 22.5334, "lon": 113.9306}
FAR = {"lat": 22.5433, "lon": 113.9305}  # about 1.1 km north
TODAY = datetime.now(UTC).date()
WINDOW = {"date_from": TODAY - timedelta(days=1), "date_to": TODAY + timedelta(days=1)}


@dataclass
class Ctx:
    crew: Crew
    actor: Principal
    order: WorkOrder


@pytest.fixture
def ctx(session: Session, settings: Settings) -> Ctx:
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    actor = auth_service.authenticate(session, token=token, settings=settings)
    return Ctx(crew=crew, actor=actor, order=make_order(session, crew=crew))


def test_arrival_records_the_distance_to_the_site(session: Session, ctx: Ctx) -> None:
    visit = service.arrive(session, ctx.order.id, actor=ctx.actor, **FAR)
    assert visit.arrival_distance_m == pytest.approx(1107, abs=10)
    assert visit.start_stage == Stage.accepted
    assert visit.outcome == VisitOutcome.open


def test_far_arrival_without_photos_stops_at_the_survey_with_both_gaps(
    session: Session, ctx: Ctx
) -> None:
    visit = service.arrive(session, ctx.order.id, actor=ctx.actor, **FAR)
    done = service.complete(session, ctx.order.id, visit.id, actor=ctx.actor)
    assert done.plan.moves == ()
    assert done.plan.stopped_at == Stage.surveyed
    assert [g.code for g in done.plan.missing] == ["arrival_position", "photo_site"]
    assert "1107 m" in done.plan.missing[0].detail or "1108 m" in done.plan.missing[0].detail
    assert ctx.order.stage == Stage.accepted
    assert visit.missing[0]["code"] == "arrival_position"


def test_walk_moves_through_survey_and_scheme_and_stops_at_the_contract(
    session: Session, ctx: Ctx
) -> None:
    make_photos(session, ctx.order, ["site"])
    make_scheme(session, ctx.order)
    visit = service.arrive(session, ctx.order.id, actor=ctx.actor, **NEAR)
    done = service.complete(session, ctx.order.id, visit.id, actor=ctx.actor)
    assert done.plan.moves == (Stage.surveyed, Stage.scheme_answered)
    assert done.plan.stopped_at == Stage.contract_signed
    assert [g.detail for g in done.plan.missing] == ["no contract generated yet"]
    assert ctx.order.stage == Stage.scheme_answered
    # The transition listener noted the stages on the open visit.
    assert visit.stages_done == ["surveyed", "scheme_answered"]


def test_only_one_open_visit_and_departure_closes_it(session: Session, ctx: Ctx) -> None:
    visit = service.arrive(session, ctx.order.id, actor=ctx.actor, **NEAR)
    with pytest.raises(Conflict, match="still open"):
        service.arrive(session, ctx.order.id, actor=ctx.actor, **NEAR)
    left = service.depart(session, ctx.order.id, visit.id, actor=ctx.actor, **NEAR)
    assert left.outcome == VisitOutcome.left_incomplete
    with pytest.raises(Conflict, match="closed"):
        service.complete(session, ctx.order.id, visit.id, actor=ctx.actor)
    assert service.arrive(session, ctx.order.id, actor=ctx.actor, **NEAR).id != visit.id


def test_another_crew_cannot_open_a_visit(session: Session, settings: Settings, ctx: Ctx) -> None:
    other = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=other)
    stranger = auth_service.authenticate(session, token=token, settings=settings)
    with pytest.raises(Forbidden):
        service.arrive(session, ctx.order.id, actor=stranger, **NEAR)


def test_one_visit_rate_counts_orders_energised_in_a_single_visit(
    session: Session, settings: Settings, ctx: Ctx
) -> None:
    service.arrive(session, ctx.order.id, actor=ctx.actor, **NEAR)
    for stage in (
        Stage.surveyed,
        Stage.scheme_answered,
        Stage.contract_signed,
        Stage.installed,
        Stage.inspected,
        Stage.energised,
    ):
        orders.transition(session, ctx.order, stage, actor=ctx.actor)
    # A second order of the same crew, in a neighbouring district, energised over two visits.
    second = make_order(session, crew=ctx.crew, district=make_district(session))
    first_visit = service.arrive(session, second.id, actor=ctx.actor, **NEAR)
    orders.transition(session, second, Stage.surveyed, actor=ctx.actor)
    service.depart(session, second.id, first_visit.id, actor=ctx.actor, **NEAR)
    service.arrive(session, second.id, actor=ctx.actor, **NEAR)
    for stage in (
        Stage.scheme_answered,
        Stage.contract_signed,
        Stage.installed,
        Stage.inspected,
        Stage.energised,
    ):
        orders.transition(session, second, stage, actor=ctx.actor)

    rows = service.one_visit_orders(session, **WINDOW)
    flags = {r.order_id: (r.visits, r.one_visit) for r in rows}
    assert flags[ctx.order.id] == (1, True)
    assert flags[second.id] == (2, False)
    assert all("*" in r.customer for r in rows)  # masked

    crew_row = next(r for r in service.one_visit_rate(session, **WINDOW) if r.code == ctx.crew.code)
    assert crew_row.name == ctx.crew.name
    assert (crew_row.energised, crew_row.one_visit, crew_row.rate) == (2, 1, 0.5)

    by_district = service.one_visit_rate(session, **WINDOW, group_by="district")
    assert by_district[0].code == "all"
    figures = {r.code: (r.energised, r.one_visit, r.rate) for r in by_district[1:]}
    home = session.get_one(District, ctx.order.district_id).code
    away = session.get_one(District, second.district_id).code
    assert home != away
    assert figures[home] == (1, 1, 1.0)
    assert figures[away] == (1, 0, 0.0)


def test_installation_gaps_name_kit_and_barcode(session: Session, ctx: Ctx) -> None:
    make_photos(session, ctx.order, ["site"])
    make_scheme(session, ctx.order)
    visit = service.arrive(session, ctx.order.id, actor=ctx.actor, **NEAR)
    for stage in (Stage.surveyed, Stage.scheme_answered, Stage.contract_signed):
        orders.transition(session, ctx.order, stage, actor=ctx.actor)
    done = service.complete(session, ctx.order.id, visit.id, actor=ctx.actor)
    assert done.plan.stopped_at == Stage.installed
    assert [(g.code, g.detail) for g in done.plan.missing] == [
        ("kit_issued", "no kit issued from a depot for this order"),
        ("meter_barcode", "no scanned meter barcode with a photo"),
    ]


def test_with_all_evidence_the_walk_stops_only_at_the_completion_check(
    session: Session, ctx: Ctx
) -> None:
    make_evidence(session, ctx.order)
    visit = service.arrive(session, ctx.order.id, actor=ctx.actor, **NEAR)
    for stage in (Stage.surveyed, Stage.scheme_answered, Stage.contract_signed):
        orders.transition(session, ctx.order, stage, actor=ctx.actor)
    done = service.complete(session, ctx.order.id, visit.id, actor=ctx.actor)
    assert done.plan.moves == (Stage.installed,)
    assert done.plan.stopped_at == Stage.inspected
    assert [g.code for g in done.plan.missing] == ["check_before_energising"]
