"""Depots and kit reservations on a real database: all or nothing, issue, close, cancel."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.audit.models import AuditEvent
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Conflict, Forbidden, InvalidTransition, OutOfStock, ValidationFailed
from field_api.kits import service
from field_api.kits.models import KitReservation, StockItem, StockMovement
from field_api.kits.rules import to_milli
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.field_api.kits.helpers import depot_with, order_with_scheme, principal, setup, stock_for

METER = "3340101234567890123456"


def _stock(session: Session, code: str) -> StockItem:
    depot = service.get_depot_or_raise(session, "DEPOT-NS")
    item = session.execute(
        select(StockItem).where(StockItem.depot_id == depot.id, StockItem.material_code == code)
    ).scalar_one()
    session.refresh(item)
    return item


def test_reserve_issue_and_close_with_returns(session: Session, settings: Settings) -> None:
    crew, member, keeper = setup(session, settings)
    order, scheme = order_with_scheme(session, crew, member)
    depot_with(session, keeper, stock_for(scheme, times=2))
    cable = next(b for b in scheme.bill_of_materials if b["role"] == "cable")

    reservation = service.reserve_for_order(session, order.id, depot_code="DEPOT-NS",
                                            actor=member)
    lines = {line.material_code: line.quantity_milli for line in service.lines_of(session, reservation)}
    assert lines[cable["material_code"]] == to_milli(cable["quantity"])
    item = _stock(session, cable["material_code"])
    assert item.reserved_milli == to_milli(cable["quantity"])
    assert item.on_hand_milli == to_milli(2 * cable["quantity"])

    service.issue(session, reservation.id, meter_barcode=METER, actor=keeper)
    assert service.issued_for_order(session, order.id) is reservation
    item = _stock(session, cable["material_code"])
    assert (item.on_hand_milli, item.reserved_milli) == (to_milli(cable["quantity"]), 0)

    consumed = {code: milli / 1000 for code, milli in lines.items()}
    consumed[cable["material_code"]] = cable["quantity"] - 10  # 10 m came back
    service.close(session, reservation.id, consumed=consumed, actor=keeper)
    assert reservation.status == "closed"
    item = _stock(session, cable["material_code"])
    assert item.on_hand_milli == to_milli(cable["quantity"] + 10)
    kinds = session.execute(
        select(StockMovement.kind).where(StockMovement.reservation_id == reservation.id)
    ).scalars().all()
    assert {"reserve", "issue", "return"} == set(kinds)


def test_a_short_depot_reserves_nothing_and_lists_every_shortage(
    session: Session, settings: Settings
) -> None:
    crew, member, keeper = setup(session, settings)
    order, scheme = order_with_scheme(session, crew, member)
    lines = stock_for(scheme)
    lines["MTR-1P-5-60"] = 0.001  # no whole meter
    cable = next(b for b in scheme.bill_of_materials if b["role"] == "cable")
    lines[cable["material_code"]] = cable["quantity"] - 5
    depot_with(session, keeper, lines)
    with pytest.raises(OutOfStock) as info:
        service.reserve_for_order(session, order.id, depot_code="DEPOT-NS", actor=member)
    short = {s["material_code"]: s for s in info.value.detail["shortages"]}
    assert set(short) == {"MTR-1P-5-60", cable["material_code"]}
    assert short[cable["material_code"]]["available"] == cable["quantity"] - 5
    # nothing stayed reserved, not even the materials that were there
    depot = service.get_depot_or_raise(session, "DEPOT-NS")
    for item in service.stock_of(session, depot):
        session.refresh(item)
        assert item.reserved_milli == 0
    assert service.reservations_of(session, order.id, actor=member) == []


def test_cancel_releases_the_reservation(session: Session, settings: Settings) -> None:
    crew, member, keeper = setup(session, settings)
    order, scheme = order_with_scheme(session, crew, member)
    depot_with(session, keeper, stock_for(scheme))
    reservation = service.reserve_for_order(session, order.id, depot_code="DEPOT-NS",
                                            actor=member)
    with pytest.raises(Conflict, match="already has an active kit reservation"):
        service.reserve_for_order(session, order.id, depot_code="DEPOT-NS", actor=member)
    service.cancel(session, reservation.id, actor=member)
    assert _stock(session, "MTR-1P-5-60").reserved_milli == 0
    again = service.reserve_for_order(session, order.id, depot_code="DEPOT-NS", actor=member)
    assert again.status == "reserved"


def test_close_checks_the_consumed_quantities(session: Session, settings: Settings) -> None:
    crew, member, keeper = setup(session, settings)
    order, scheme = order_with_scheme(session, crew, member)
    depot_with(session, keeper, stock_for(scheme))
    reservation = service.reserve_for_order(session, order.id, depot_code="DEPOT-NS",
                                            actor=keeper)
    with pytest.raises(InvalidTransition, match="not issued"):
        service.close(session, reservation.id, consumed={}, actor=keeper)
    service.issue(session, reservation.id, meter_barcode=METER, actor=keeper)
    order.stage = Stage.installed  # installed: the issued kit is closed with its returns
    session.flush()
    with pytest.raises(Conflict, match="is installed"):
        service.cancel(session, reservation.id, actor=keeper)
    with pytest.raises(ValidationFailed) as info:
        service.close(session, reservation.id, consumed={"MTR-1P-5-60": 2, "NOPE": 1},
                      actor=keeper)
    message = str(info.value.detail)
    assert "NOPE: not part of this kit" in message
    assert "MTR-1P-5-60: consumed 2 exceeds the 1 issued" in message
    assert "BOX-1P-1: consumed quantity missing" in message


def test_reservation_needs_an_accepted_scheme(session: Session, settings: Settings) -> None:
    from tests.builders import make_order

    crew, member, keeper = setup(session, settings)
    depot_with(session, keeper, {"MTR-1P-5-60": 5})
    order = make_order(session, crew=crew)
    with pytest.raises(InvalidTransition, match="no accepted supply scheme"):
        service.reserve_for_order(session, order.id, depot_code="DEPOT-NS", actor=member)


def test_only_store_roles_manage_stock(session: Session, settings: Settings) -> None:
    _, member, keeper = setup(session, settings)
    depot_with(session, keeper, {"MTR-1P-5-60": 5})
    with pytest.raises(Forbidden):
        service.receive(session, "DEPOT-NS", {"MTR-1P-5-60": 1}, actor=member)
    with pytest.raises(Forbidden):
        service.create_depot(session, code="X", name="x", district_code=None, actor=member)
    with pytest.raises(ValidationFailed, match="unknown material code"):
        service.receive(session, "DEPOT-NS", {"NOT-A-MATERIAL": 1}, actor=keeper)
    with pytest.raises(ValidationFailed, match="must be > 0"):
        service.receive(session, "DEPOT-NS", {"MTR-1P-5-60": -1}, actor=keeper)


def test_low_stock_report_for_planners(session: Session, settings: Settings) -> None:
    _, _, keeper = setup(session, settings)
    planner = principal(session, settings, Role.planner)
    depot_with(session, keeper, {"MTR-1P-5-60": 3, "BOX-1P-1": 50})
    service.set_reorder_level(session, "DEPOT-NS", "MTR-1P-5-60", 5, actor=keeper)
    service.set_reorder_level(session, "DEPOT-NS", "BOX-1P-1", 5, actor=keeper)
    rows = service.low_stock(session, actor=planner)
    assert [(d.code, s.material_code) for d, s in rows] == [("DEPOT-NS", "MTR-1P-5-60")]
    with pytest.raises(Forbidden):
        service.low_stock(session, actor=principal(session, settings, Role.inspector))


# --- concurrency: real commits on a WAL SQLite file and on PostgreSQL -----------------------


def test_parallel_reservations_never_overdraw_the_stock(committed_url: str) -> None:
    import threading

    from field_api.common.actors import Principal
    from field_api.db import make_engine, make_session_factory
    from field_api.kits.models import KitReservation

    settings = Settings(env="test", database_url=committed_url,
                        token_pepper="test-pepper-0123456789")
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    meters, orders_count = 3, 8
    with factory.begin() as s:
        crew, member, keeper = setup(s, settings)
        order_ids, schemes_ = [], []
        for _ in range(orders_count):
            order, scheme = order_with_scheme(s, crew, member)
            order_ids.append(order.id)
            schemes_.append(scheme)
        lines = stock_for(schemes_[0], times=orders_count)
        lines["MTR-1P-5-60"] = meters  # the bottleneck: 3 meters for 8 kits
        depot_with(s, keeper, lines)
        keeper_principal = Principal(user_id=keeper.user_id, name=keeper.name,
                                     role=Role.storekeeper)
    barrier = threading.Barrier(orders_count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def reserve(order_id: int) -> None:
        barrier.wait()
        try:
            with factory.begin() as s:
                service.reserve_for_order(s, order_id, depot_code="DEPOT-NS",
                                          actor=keeper_principal)
            result = "reserved"
        except OutOfStock:
            result = "out_of_stock"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=reserve, args=(i,)) for i in order_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert sorted(outcomes) == ["out_of_stock"] * (orders_count - meters) + ["reserved"] * meters
    with factory() as s:
        depot = service.get_depot_or_raise(s, "DEPOT-NS")
        stock = {i.material_code: i for i in service.stock_of(s, depot)}
        assert stock["MTR-1P-5-60"].reserved_milli == meters * 1000
        assert all(0 <= i.reserved_milli <= i.on_hand_milli for i in stock.values())
        held = s.execute(select(KitReservation).where(KitReservation.status == "reserved")).all()
        assert len(held) == meters
        # every other material was reserved exactly for the three kits that got a meter
        box = stock["BOX-1P-1"]
        assert box.reserved_milli == meters * 1000
    engine.dispose()


def test_parallel_reservations_of_one_order_hold_one_kit(committed_url: str) -> None:
    import threading

    from field_api.common.actors import Principal
    from field_api.db import make_engine, make_session_factory

    settings = Settings(env="test", database_url=committed_url,
                        token_pepper="test-pepper-0123456789")
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with factory.begin() as s:
        crew, member, keeper = setup(s, settings)
        order, scheme = order_with_scheme(s, crew, member)
        depot_with(s, keeper, stock_for(scheme, times=4))
        actor = Principal(user_id=keeper.user_id, name=keeper.name, role=Role.storekeeper)
    tries = 4
    barrier = threading.Barrier(tries)
    outcomes: list[str] = []

    def reserve() -> None:
        barrier.wait()
        try:
            with factory.begin() as s:
                service.reserve_for_order(s, order.id, depot_code="DEPOT-NS", actor=actor)
            outcomes.append("reserved")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=reserve) for _ in range(tries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["conflict"] * (tries - 1) + ["reserved"]
    with factory() as s:
        depot = service.get_depot_or_raise(s, "DEPOT-NS")
        meter = next(i for i in service.stock_of(s, depot) if i.material_code == "MTR-1P-5-60")
        assert meter.reserved_milli == 1000
    engine.dispose()


@pytest.mark.parametrize(
    "barcode",
    ["ABC12345", "33401012345678901234", "334010123456789012345X", "33401012345678901234567"],
)
def test_a_kit_is_issued_only_with_a_22_digit_meter_code(
    session: Session, settings: Settings, barcode: str
) -> None:
    crew, member, keeper = setup(session, settings)
    order, scheme = order_with_scheme(session, crew, member)
    depot_with(session, keeper, stock_for(scheme))
    reservation = service.reserve_for_order(session, order.id, depot_code="DEPOT-NS",
                                            actor=member)
    with pytest.raises(ValidationFailed, match="meter asset code"):
        service.issue(session, reservation.id, meter_barcode=barcode, actor=keeper)
    assert reservation.status == "reserved"
    # spaces and hyphens between digit groups are dropped, as at the crew's barcode upload
    service.issue(session, reservation.id, meter_barcode="33401 01 2345-6789-0123-456",
                  actor=keeper)
    assert reservation.meter_barcode == METER


def test_the_configured_check_digit_applies_at_kit_issue(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from field_api import meters

    crew, member, keeper = setup(session, settings)
    order, scheme = order_with_scheme(session, crew, member)
    depot_with(session, keeper, stock_for(scheme))
    reservation = service.reserve_for_order(session, order.id, depot_code="DEPOT-NS",
                                            actor=member)
    monkeypatch.setattr(meters, "configured_check_digit_rule", lambda settings=None: "luhn")
    assert not meters.check_digit_rules.get("luhn")(METER)
    with pytest.raises(ValidationFailed, match="luhn check digit"):
        service.issue(session, reservation.id, meter_barcode=METER, actor=keeper)



@dataclass
class Issued:
    order: WorkOrder
    member: Principal
    keeper: Principal
    reservation: KitReservation


def _issued(session: Session, settings: Settings) -> Issued:
    crew, member, keeper = setup(session, settings)
    order, scheme = order_with_scheme(session, crew, member)
    depot_with(session, keeper, stock_for(scheme))
    reservation = service.reserve_for_order(session, order.id, depot_code="DEPOT-NS",
                                            actor=member)
    service.issue(session, reservation.id, meter_barcode=METER, actor=keeper)
    return Issued(order, member, keeper, reservation)


def _audited(session: Session, action: str) -> int:
    return len(session.execute(
        select(AuditEvent.seq).where(AuditEvent.action == action)
    ).scalars().all())


def test_an_issued_kit_returns_to_stock_whole_before_installation(
    session: Session, settings: Settings
) -> None:
    kit = _issued(session, settings)
    assert _stock(session, "MTR-1P-5-60").on_hand_milli == 0
    with pytest.raises(Forbidden):
        service.return_to_stock(session, kit.reservation.id, actor=kit.member)
    service.return_to_stock(session, kit.reservation.id, actor=kit.keeper)
    assert kit.reservation.status == "returned"
    meter = _stock(session, "MTR-1P-5-60")
    assert (meter.on_hand_milli, meter.reserved_milli) == (1000, 0)
    assert _audited(session, "kit_reservation.returned") == 1
    lines = service.lines_of(session, kit.reservation)
    assert all(x.returned_milli == x.quantity_milli and x.consumed_milli == 0 for x in lines)
    assert service.issued_for_order(session, kit.order.id) is None
    with pytest.raises(InvalidTransition, match="not issued"):
        service.return_to_stock(session, kit.reservation.id, actor=kit.keeper)
    again = service.reserve_for_order(session, kit.order.id, depot_code="DEPOT-NS",
                                      actor=kit.member)
    assert again.status == "reserved"


def test_an_issued_reservation_can_be_cancelled_before_installation_only(
    session: Session, settings: Settings
) -> None:
    kit = _issued(session, settings)
    with pytest.raises(Forbidden):  # the kit must come back to the depot: storekeeper
        service.cancel(session, kit.reservation.id, actor=kit.member)
    service.cancel(session, kit.reservation.id, actor=kit.keeper)
    assert kit.reservation.status == "cancelled"
    assert _stock(session, "MTR-1P-5-60").on_hand_milli == 1000
    assert _audited(session, "kit_reservation.cancelled") == 1

    second = service.reserve_for_order(session, kit.order.id, depot_code="DEPOT-NS",
                                       actor=kit.member)
    service.issue(session, second.id, meter_barcode=METER, actor=kit.keeper)
    kit.order.stage = Stage.installed
    session.flush()
    with pytest.raises(Conflict, match="is installed; close the reservation"):
        service.cancel(session, second.id, actor=kit.keeper)
    with pytest.raises(Conflict, match="is installed; close the reservation"):
        service.return_to_stock(session, second.id, actor=kit.keeper)
    assert second.status == "issued"
