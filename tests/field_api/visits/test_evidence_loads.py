"""One completion reads the order's evidence once: each slice visited once, each row read once."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.checklists import service as checklists
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.contracts import service as contracts
from field_api.contracts.models import Contract
from field_api.kits import service as kits
from field_api.media import service as media
from field_api.schemes import service as schemes
from field_api.visits import evidence, service
from field_api.visits.rules import CheckRecord
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import make_crew, make_order, make_user
from tests.field_api.visits.builders import make_evidence

NEAR_LAT, NEAR_LON = 22.5334, 113.9306  # the order is at 22.5333 N, 113.9305 E
BEFORE_FAILING: dict[str, Any] = {
    "insulation_resistance": 12.5,
    "earthing_resistance": 6.2,  # above the 4 Ω limit: a critical item fails
    "meter_height": 1.5,
    "wiring_correct": True,
    "cable_section": 16,
    "breaker_rating": 63,
    "seal_numbers": "SG-0001, SG-0002",
}
# Every function through which the completion reads another slice's records.
LOADERS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "media": (media, ("photo_counts", "latest_barcode")),
    "schemes": (schemes, ("accepted_for_order",)),
    "kits": (kits, ("issued_for_order",)),
    "contracts": (contracts, ("get", "is_signed")),
    "checklists": (checklists, ("has_passed", "submissions_of", "items_of")),
}


def _counting(calls: Counter[str], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return fn(*args, **kwargs)

    return counted


@pytest.fixture
def loader_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of every slice loader, by ``slice.function``."""
    calls: Counter[str] = Counter()
    for slice_name, (module, names) in LOADERS.items():
        for name in names:
            key = f"{slice_name}.{name}"
            monkeypatch.setattr(module, name, _counting(calls, key, getattr(module, name)))
    return calls


@contextmanager
def tables_read(session: Session) -> Iterator[list[str]]:
    """The table each SELECT on the session's connection reads from (its first FROM)."""
    read: list[str] = []
    connection = session.connection()

    def before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        found = re.search(r"\bFROM\s+\"?(\w+)", statement, re.IGNORECASE)
        if statement.lstrip().upper().startswith("SELECT") and found:
            read.append(found.group(1))

    event.listen(connection, "before_cursor_execute", before)
    try:
        yield read
    finally:
        event.remove(connection, "before_cursor_execute", before)


def installed_order(session: Session, settings: Settings) -> tuple[WorkOrder, Principal]:
    """An installed order of a crew with every piece of evidence on record, and the crew."""
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    actor = auth_service.authenticate(session, token=token, settings=settings)
    order = make_order(session, crew=crew, stage=Stage.installed)
    make_evidence(session, order)
    return order, actor


def order_failing_its_check(
    session: Session, settings: Settings
) -> tuple[WorkOrder, Principal, int]:
    """An installed order with every piece of evidence, an unsigned contract and a failed
    before-energising check (the supply-on check never submitted); a visit open on it."""
    order, actor = installed_order(session, settings)
    session.add(
        Contract(order_id=order.id, contract_no=f"HT-T-{order.id}", data={}, draft_sha256="0" * 64)
    )
    failed = checklists.submit(
        session, order.id, phase="before_energising", values=BEFORE_FAILING, actor=actor
    )
    assert not failed.passed
    visit = service.arrive(session, order.id, actor=actor, lat=NEAR_LAT, lon=NEAR_LON)
    session.flush()
    return order, actor, visit.id


def test_the_snapshot_reads_each_kind_of_row_once(session: Session, settings: Settings) -> None:
    order, _, visit_id = order_failing_its_check(session, settings)
    visit = service.get_or_raise(session, order.id, visit_id)
    with tables_read(session) as read:
        snap = evidence.snapshot(session, order, visit)
    # Seven SELECTs. Before the snapshot the same completion ran 20, each stage re-reading
    # what it needed: media 6 (photos per kind and latest barcode, three times), the issued
    # kit 4, the scheme 3, the contract 2 and the submissions 4 (two per phase). The media
    # slice still answers two different reads of its table (photos per kind, the latest
    # barcode photo); the items are read once, for the last attempts of phases never passed.
    assert sorted(read) == sorted(
        [
            "media_items",
            "media_items",
            "supply_schemes",
            "kit_reservations",
            "contracts",
            "checklist_submissions",
            "checklist_item_results",
        ]
    )
    assert snap.contract == "unsigned" and snap.kit_issued and snap.scheme_kit_code == "R1"
    assert snap.checks["before_energising"].attempt == 1
    assert [i.code for i in snap.checks["before_energising"].failed] == ["earthing_resistance"]
    assert "supply_on" not in snap.checks


def test_one_completion_visits_each_slice_once(
    session: Session, settings: Settings, loader_calls: Counter[str]
) -> None:
    order, actor, visit_id = order_failing_its_check(session, settings)
    loader_calls.clear()  # what building the order read does not count
    done = service.complete(session, order.id, visit_id, actor=actor)
    assert done.plan.stopped_at == Stage.inspected
    assert [g.code for g in done.plan.missing] == ["check_before_energising.earthing_resistance"]
    # Exactly one call of each loader the snapshot needs, none of the per-stage ones
    # (contracts.is_signed, checklists.has_passed). Before the snapshot this completion made
    # 21 calls: media 6, schemes 3, kits 4, contracts 3 (is_signed, its own get, then get
    # again), checklists 5 (has_passed and submissions_of per phase, items_of once).
    assert loader_calls == {
        "media.photo_counts": 1,
        "media.latest_barcode": 1,
        "schemes.accepted_for_order": 1,
        "kits.issued_for_order": 1,
        "contracts.get": 1,
        "checklists.submissions_of": 1,
        "checklists.items_of": 1,
    }


def test_a_passed_phase_reads_no_items(session: Session, settings: Settings) -> None:
    order, actor = installed_order(session, settings)
    passed = checklists.submit(
        session,
        order.id,
        phase="before_energising",
        values=BEFORE_FAILING | {"earthing_resistance": 3.2},
        actor=actor,
    )
    assert passed.passed
    session.flush()
    with tables_read(session) as read:
        records = evidence.check_records(session, order.id)
    assert records == {"before_energising": CheckRecord(passed=True)}
    assert read == ["checklist_submissions"]
