"""Completion checks on a real database: evaluate, store, move the order, count first passes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.auth.models import Crew
from field_api.checklists import service
from field_api.common import csvfiles
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Conflict, InvalidTransition, ServiceUnavailable, ValidationFailed
from field_api.media.models import AnalysisState
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import make_crew, make_order, make_user
from tests.field_api.visits.builders import (
    METER,
    make_evidence,
    make_issued_kit,
    make_photos,
    make_scheme,
)

BEFORE_OK: dict[str, Any] = {
    "insulation_resistance": 12.5,
    "earthing_resistance": 3.2,
    "meter_height": 1.5,
    "wiring_correct": True,
    "cable_section": 16,
    "breaker_rating": 63,
    "seal_numbers": "SG-0001, SG-0002",
}
SUPPLY_ON_OK: dict[str, Any] = {
    "terminal_voltage": 226.0,
    "rcd_trip_time": 28,
    "meter_registering": True,
}
TODAY = datetime.now(UTC).date()


@dataclass
class Installed:
    crew: Crew
    actor: Principal
    order: WorkOrder


def make_installed(
    session: Session, settings: Settings, crew: Crew | None = None, *, evidence: bool = True
) -> Installed:
    crew = crew or make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    actor = auth_service.authenticate(session, token=token, settings=settings)
    order = make_order(session, crew=crew, stage=Stage.installed)
    if evidence:
        make_evidence(session, order)
    return Installed(crew=crew, actor=actor, order=order)


@pytest.fixture
def installed(session: Session, settings: Settings) -> Installed:
    return make_installed(session, settings)


def test_passing_before_energising_moves_the_order_to_inspected(
    session: Session, installed: Installed
) -> None:
    row = service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK,
        actor=installed.actor,
    )
    assert row.passed and row.attempt == 1
    assert (row.card_code, row.card_version) == ("LV-1P-RES", 1)
    assert row.kit_code == "R1"
    assert installed.order.stage == Stage.inspected
    items = service.items_of(session, [row.id])[row.id]
    assert {i.item_code for i in items} >= {"earthing_resistance", "meter_barcode", "photo_site"}
    assert all(i.passed for i in items)
    assert row.evidence["photo_counts"]["site"] == 1
    assert row.evidence["issued_meter_barcode"] == METER


def test_earthing_out_of_limit_fails_with_the_limit_quoted(
    session: Session, installed: Installed
) -> None:
    row = service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK | {"earthing_resistance": 6.2},
        actor=installed.actor,
    )
    assert not row.passed
    assert row.status == "failed"
    failed = [i for i in service.items_of(session, [row.id])[row.id] if not i.passed]
    assert [i.item_code for i in failed] == ["earthing_resistance"]
    assert failed[0].reason == "6.2 Ω above the upper limit 4 Ω"
    assert installed.order.stage == Stage.installed


def test_rework_passes_on_the_second_attempt_and_first_pass_counts_a_failure(
    session: Session, installed: Installed
) -> None:
    bad = BEFORE_OK | {"earthing_resistance": 6.2}
    service.submit(
        session, installed.order.id, phase="before_energising", values=bad, actor=installed.actor
    )
    second = service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK,
        actor=installed.actor,
    )
    assert second.passed and second.attempt == 2
    assert installed.order.stage == Stage.inspected

    rows = service.first_pass(
        session,
        date_from=TODAY - timedelta(days=1),
        date_to=TODAY + timedelta(days=1),
        group_by="crew",
    )
    mine = [r for r in rows if r.code == installed.crew.code]
    assert len(mine) == 1
    assert (mine[0].checked, mine[0].passed_first, mine[0].rate) == (1, 0, 0.0)
    assert mine[0].name == installed.crew.name


def test_first_pass_by_kit_and_card_version(
    session: Session, settings: Settings, installed: Installed
) -> None:
    other = make_installed(session, settings)
    service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK,
        actor=installed.actor,
    )
    service.submit(
        session,
        other.order.id,
        phase="before_energising",
        values=BEFORE_OK | {"wiring_correct": False},
        actor=other.actor,
    )
    window = {"date_from": TODAY - timedelta(days=1), "date_to": TODAY + timedelta(days=1)}
    by_kit = {r.code: r for r in service.first_pass(session, group_by="kit", **window)}
    assert (by_kit["R1"].checked, by_kit["R1"].passed_first) == (2, 1)
    assert by_kit["R1"].rate == 0.5
    by_card = {r.code: r for r in service.first_pass(session, group_by="card_version", **window)}
    assert by_card["LV-1P-RES v1"].checked == 2
    by_district = service.first_pass(session, group_by="district", **window)
    assert sum(r.checked for r in by_district) == 2


def test_nothing_outside_the_date_range(session: Session, installed: Installed) -> None:
    service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK,
        actor=installed.actor,
    )
    past = TODAY - timedelta(days=30)
    assert service.first_pass(session, date_from=past, date_to=past, group_by="crew") == []


def test_pareto_orders_failing_items_by_frequency(
    session: Session, settings: Settings, installed: Installed
) -> None:
    other = make_installed(session, settings)
    service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK | {"earthing_resistance": 9.0, "meter_height": 2.1},
        actor=installed.actor,
    )
    service.submit(
        session,
        other.order.id,
        phase="before_energising",
        values=BEFORE_OK | {"earthing_resistance": 5.0},
        actor=other.actor,
    )
    rows = service.failing_items(
        session, date_from=TODAY - timedelta(days=1), date_to=TODAY + timedelta(days=1)
    )
    assert [(r.item_code, r.failures) for r in rows] == [
        ("earthing_resistance", 2),
        ("meter_height", 1),
    ]
    assert rows[0].share == pytest.approx(2 / 3)
    assert rows[-1].cumulative_share == pytest.approx(1.0)


def test_supply_on_pass_energises(session: Session, installed: Installed) -> None:
    service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK,
        actor=installed.actor,
    )
    row = service.submit(
        session, installed.order.id, phase="supply_on", values=SUPPLY_ON_OK, actor=installed.actor
    )
    assert row.passed
    assert installed.order.stage == Stage.energised


def test_supply_on_before_inspection_is_refused(session: Session, installed: Installed) -> None:
    with pytest.raises(InvalidTransition, match="when the order is inspected"):
        service.submit(
            session,
            installed.order.id,
            phase="supply_on",
            values=SUPPLY_ON_OK,
            actor=installed.actor,
        )


def test_a_passed_check_cannot_be_submitted_again(session: Session, installed: Installed) -> None:
    service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK,
        actor=installed.actor,
    )
    with pytest.raises(Conflict, match="already passed"):
        service.submit(
            session,
            installed.order.id,
            phase="before_energising",
            values=BEFORE_OK,
            actor=installed.actor,
        )


def test_unknown_items_and_wrong_types_are_listed(session: Session, installed: Installed) -> None:
    with pytest.raises(ValidationFailed) as caught:
        service.submit(
            session,
            installed.order.id,
            phase="before_energising",
            values=BEFORE_OK | {"colour": "red", "earthing_resistance": "low"},
            actor=installed.actor,
        )
    problems = caught.value.detail
    assert any(p.startswith("colour:") for p in problems)
    assert any(p.startswith("earthing_resistance:") for p in problems)


def test_a_check_before_its_evidence_exists_is_refused_and_never_counts(
    session: Session, settings: Settings
) -> None:
    ctx = make_installed(session, settings, evidence=False)
    make_scheme(session, ctx.order)
    make_issued_kit(session, ctx.order)
    make_photos(session, ctx.order, ["site", "barcode", "meter_box", "wiring"])
    with pytest.raises(Conflict) as caught:
        service.submit(
            session, ctx.order.id, phase="before_energising", values=BEFORE_OK, actor=ctx.actor
        )
    assert "photo_seal: 1 more photo(s) of kind seal" in str(caught.value.detail)
    assert service.submissions_of(session, ctx.order.id) == []

    make_photos(session, ctx.order, ["seal"])
    row = service.submit(
        session, ctx.order.id, phase="before_energising", values=BEFORE_OK, actor=ctx.actor
    )
    assert row.passed and row.attempt == 1
    rows = service.first_pass(
        session,
        date_from=TODAY - timedelta(days=1),
        date_to=TODAY + timedelta(days=1),
        group_by="crew",
    )
    mine = [r for r in rows if r.code == ctx.crew.code]
    assert (mine[0].checked, mine[0].passed_first, mine[0].rate) == (1, 1, 1.0)


def test_a_barcode_photo_not_yet_decoded_is_a_retryable_refusal(
    session: Session, settings: Settings
) -> None:
    ctx = make_installed(session, settings, evidence=False)
    make_scheme(session, ctx.order)
    make_issued_kit(session, ctx.order)
    photos = make_photos(session, ctx.order)
    barcode = next(p for p in photos if p.kind == "barcode")
    barcode.analysis, barcode.decoded_value = AnalysisState.pending, None
    session.flush()
    with pytest.raises(ServiceUnavailable, match="the barcode photo is not decoded yet") as e:
        service.submit(
            session, ctx.order.id, phase="before_energising", values=BEFORE_OK, actor=ctx.actor
        )
    assert e.value.headers == {"Retry-After": "5"}  # the crew app's outbox retries a 503
    assert service.submissions_of(session, ctx.order.id) == []
    barcode.analysis, barcode.decoded_value = AnalysisState.done, barcode.scanned_value
    session.flush()
    row = service.submit(
        session, ctx.order.id, phase="before_energising", values=BEFORE_OK, actor=ctx.actor
    )
    assert row.passed and row.attempt == 1


@pytest.mark.parametrize(
    ("phase", "values"),
    [
        ("before_energising", BEFORE_OK | {"earthing_resistance": -2.0}),
        ("before_energising", BEFORE_OK | {"insulation_resistance": -1}),
    ],
)
def test_impossible_readings_are_422_and_no_attempt(
    session: Session, installed: Installed, phase: str, values: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed, match="is impossible"):
        service.submit(
            session, installed.order.id, phase=phase, values=values, actor=installed.actor
        )
    assert service.submissions_of(session, installed.order.id) == []
    row = service.submit(
        session, installed.order.id, phase=phase, values=BEFORE_OK, actor=installed.actor
    )
    assert row.passed and row.attempt == 1


def test_an_impossible_terminal_voltage_is_refused(session: Session, installed: Installed) -> None:
    service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK,
        actor=installed.actor,
    )
    with pytest.raises(ValidationFailed, match="between 0 and 1000 V"):
        service.submit(
            session,
            installed.order.id,
            phase="supply_on",
            values=SUPPLY_ON_OK | {"terminal_voltage": 2200.0},
            actor=installed.actor,
        )
    assert service.submissions_of(session, installed.order.id, phase="supply_on") == []


def test_a_meter_other_than_the_issued_one_fails_the_barcode_item(
    session: Session, settings: Settings
) -> None:
    ctx = make_installed(session, settings, evidence=False)
    make_scheme(session, ctx.order)
    make_issued_kit(session, ctx.order, meter="1100109999999999999999")
    make_photos(session, ctx.order)
    row = service.submit(
        session, ctx.order.id, phase="before_energising", values=BEFORE_OK, actor=ctx.actor
    )
    failed = {
        i.item_code: i.reason for i in service.items_of(session, [row.id])[row.id] if not i.passed
    }
    assert failed == {
        "meter_barcode": f"scanned meter {METER} is not the issued meter 1100109999999999999999"
    }


def test_a_cable_other_than_the_scheme_fails_quoting_the_scheme(
    session: Session, installed: Installed
) -> None:
    row = service.submit(
        session,
        installed.order.id,
        phase="before_energising",
        values=BEFORE_OK | {"cable_section": 10},
        actor=installed.actor,
    )
    failed = {
        i.item_code: i.reason for i in service.items_of(session, [row.id])[row.id] if not i.passed
    }
    assert failed == {"cable_section": "10 mm² differs from the scheme's 16 mm²"}


def test_without_a_scheme_no_card_can_be_chosen(session: Session, settings: Settings) -> None:
    ctx = make_installed(session, settings, evidence=False)
    with pytest.raises(ValidationFailed, match="no accepted scheme"):
        service.submit(
            session, ctx.order.id, phase="before_energising", values=BEFORE_OK, actor=ctx.actor
        )


def test_csv_cells_never_become_formulas() -> None:
    rows = [service.ParetoRow("x", '=HYPERLINK("evil")', 1, 1.0, 1.0)]
    text = csvfiles.csv_text(rows, ["item_code", "label", "failures", "share"])
    assert text.startswith("\ufeffitem_code,label,failures,share\n")
    assert "'=HYPERLINK" in text
    assert "1.0000" in text
