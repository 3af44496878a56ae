"""Scheme requests for orders on a real database: accept, refuse, supersede, book capacity."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Forbidden, InvalidTransition, ValidationFailed
from field_api.network import service as network
from field_api.schemes import service
from field_api.schemes.schemas import SchemeCreate, SchemeRead
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import make_crew, make_order, make_user

FIXTURES = Path(__file__).parents[2] / "fixtures" / "network"


@pytest.fixture
def crew_setup(session: Session, settings: Settings) -> tuple[Principal, object]:
    network.import_file(
        session, (FIXTURES / "network.geojson").read_bytes(), filename="network.geojson",
        actor=None,
    )
    crew = make_crew(session)
    user, _ = make_user(session, settings, role=Role.crew, crew=crew)
    return Principal(user_id=user.id, name=user.name, role=Role.crew, crew_id=crew.id), crew


def _order(session: Session, crew: object, **overrides: object) -> WorkOrder:
    return make_order(session, crew=crew, stage=Stage.surveyed, **overrides)  # type: ignore[arg-type]


def test_a_passing_scheme_is_saved_and_answers_the_order(
    session: Session, crew_setup: tuple[Principal, object]
) -> None:
    actor, crew = crew_setup
    order = _order(session, crew)
    row = service.request_scheme(session, order.id, SchemeCreate(), actor=actor)
    assert row.status == "accepted" and order.stage == Stage.scheme_answered
    assert (row.kit_code, row.transformer_code) == ("R1", "TX-NANSHAN-01")
    # 40 A over 80 m drops 5.9 % on the kit's Cu 2×10: the engine takes Cu 2×16
    assert row.cable_code == "CAB-CU-2X16" and row.cable_section_mm2 == 16
    assert row.breaker_rating_a == 63 and row.metering == "direct"
    assert 198 <= (row.terminal_voltage_v or 0) <= 235.4
    assert {b["material_code"] for b in row.bill_of_materials} >= {"MTR-1P-5-60", "CAB-CU-2X16"}
    assert service.accepted_for_order(session, order.id) is row
    read = SchemeRead.of(row)
    assert read.accepted and read.scheme is not None
    # the customer is on the transformer's LV line: the route follows it
    assert read.scheme.route_method == "along_line"
    assert read.scheme.route_length_m == pytest.approx(80, abs=1.5)
    connection = network.get_connection(session, order.id)
    assert connection is not None and connection.load_kva == pytest.approx(8 / 0.9)


def test_committed_loads_push_the_next_order_to_another_transformer(
    session: Session, crew_setup: tuple[Principal, object]
) -> None:
    actor, crew = crew_setup
    # TX-NANSHAN-01: 400 kVA rated, 250 kVA measured → 150 kVA spare
    first = _order(session, crew, category="small_micro_enterprise", phases=3, capacity_kw=100)
    second = _order(session, crew, category="small_micro_enterprise", phases=3, capacity_kw=50)
    a = service.request_scheme(session, first.id, SchemeCreate(), actor=actor)
    b = service.request_scheme(session, second.id, SchemeCreate(), actor=actor)
    assert a.transformer_code == "TX-NANSHAN-01" and a.kit_code == "B3"
    assert b.transformer_code == "TX-NANSHAN-02"
    answer = SchemeRead.of(b)
    assert [f.rule for f in answer.failures] == ["transformer_capacity"]


def test_a_new_accepted_scheme_supersedes_the_old_one(
    session: Session, crew_setup: tuple[Principal, object]
) -> None:
    actor, crew = crew_setup
    order = _order(session, crew)
    old = service.request_scheme(session, order.id, SchemeCreate(), actor=actor)
    new = service.request_scheme(
        session, order.id, SchemeCreate(preferred_cable="CAB-CU-2X25"), actor=actor
    )
    assert old.status == "superseded" and new.status == "accepted"
    assert new.cable_code == "CAB-CU-2X25"
    assert service.accepted_for_order(session, order.id) is new


def test_a_refusal_is_saved_with_the_white_list_proposal(
    session: Session, crew_setup: tuple[Principal, object]
) -> None:
    actor, crew = crew_setup
    order = _order(session, crew, lon=114.2, lat=22.7)  # far from every transformer
    row = service.request_scheme(session, order.id, SchemeCreate(), actor=actor)
    assert row.status == "refused" and row.white_list_proposed
    assert order.stage == Stage.surveyed
    read = SchemeRead.of(row)
    assert read.white_list is not None and read.failures[0].rule == "no_transformer_in_reach"
    assert service.accepted_for_order(session, order.id) is None
    assert network.get_connection(session, order.id) is None


def test_a_proposal_not_accepted_changes_nothing(
    session: Session, crew_setup: tuple[Principal, object]
) -> None:
    actor, crew = crew_setup
    order = _order(session, crew)
    row = service.request_scheme(session, order.id, SchemeCreate(accept=False), actor=actor)
    assert row.status == "proposed" and order.stage == Stage.surveyed
    assert network.get_connection(session, order.id) is None


def test_scheme_needs_a_surveyed_order(
    session: Session, crew_setup: tuple[Principal, object]
) -> None:
    actor, crew = crew_setup
    order = make_order(session, crew=crew)  # still accepted, not surveyed
    with pytest.raises(InvalidTransition, match="once surveyed"):
        service.request_scheme(session, order.id, SchemeCreate(), actor=actor)


def test_bad_cable_choice_is_a_validation_error(
    session: Session, crew_setup: tuple[Principal, object]
) -> None:
    actor, crew = crew_setup
    order = _order(session, crew)
    with pytest.raises(ValidationFailed, match="not a 1-phase cable option"):
        service.request_scheme(
            session, order.id, SchemeCreate(preferred_cable="CAB-CU-4X16"), actor=actor
        )


def test_another_crews_order_is_forbidden(
    session: Session, settings: Settings, crew_setup: tuple[Principal, object]
) -> None:
    _, crew = crew_setup
    order = _order(session, crew)
    other = make_crew(session)
    user, _ = make_user(session, settings, role=Role.crew, crew=other)
    stranger = Principal(user_id=user.id, name=user.name, role=Role.crew, crew_id=other.id)
    with pytest.raises(Forbidden):
        service.request_scheme(session, order.id, SchemeCreate(), actor=stranger)
