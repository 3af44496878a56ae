"""Use cases of depots and kits: stock, reserve a kit for an order, issue, close, low stock.

Stock is changed only by conditional UPDATEs (``... WHERE on_hand - reserved >= :n``): the
database decides atomically whether enough is left, so concurrent reservations can never take
stock below zero on SQLite (writers serialised by BEGIN IMMEDIATE) or PostgreSQL (row locks,
with the WHERE re-checked after a wait). Materials are always updated in code order, so two
reservations cannot deadlock. A reservation's lines run inside a SAVEPOINT: all or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from field_api import meters
from field_api.audit import service as audit
from field_api.auth import service as auth_service
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings, settings_of
from field_api.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    OutOfStock,
    ValidationFailed,
)
from field_api.kits import rules
from field_api.kits.models import (
    Depot,
    KitReservation,
    ReservationLine,
    StockItem,
    StockMovement,
)
from field_api.schemes import service as schemes
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from standard_kits import load_catalogue

ACTIVE = ("reserved", "issued")
# Once the meter is on the wall the kit is consumed: an issued kit is closed with its returns.
INSTALLED_OR_LATER = frozenset(
    {Stage.installed, Stage.inspected, Stage.energised, Stage.called_back, Stage.closed}
)
STORE_ROLES = (Role.storekeeper, Role.admin)


@dataclass(frozen=True, slots=True)
class Shortage:
    """A material a depot cannot supply in full."""

    material_code: str
    needed_milli: int
    available_milli: int


# --- depots and stock -------------------------------------------------------------------------


def get_depot_by_code(session: Session, code: str) -> Depot | None:
    """The depot with ``code``, or None."""
    return session.execute(select(Depot).where(Depot.code == code)).scalar_one_or_none()


def get_depot_or_raise(session: Session, code: str) -> Depot:
    """The depot with ``code``; 404 when unknown."""
    depot = get_depot_by_code(session, code)
    if depot is None:
        raise NotFound(
            f"depot {code} not found",
            code="depot.not_found",
            params={"depot_code": code},
        )
    return depot


def list_depots(session: Session) -> list[Depot]:
    """Every depot, by code."""
    return list(session.execute(select(Depot).order_by(Depot.code)).scalars())


def create_depot(
    session: Session, *, code: str, name: str, district_code: str | None, actor: Principal
) -> Depot:
    """Open a depot (storekeeper, admin)."""
    _require_store(actor)
    if get_depot_by_code(session, code) is not None:
        raise Conflict(f"depot {code} exists", code="depot.exists", params={"depot_code": code})
    district_id = None
    if district_code is not None:
        district = auth_service.get_district_by_code(session, district_code)
        if district is None:
            raise ValidationFailed(
                f"unknown district {district_code}",
                code="district.unknown",
                params={"district_code": district_code},
            )
        district_id = district.id
    depot = Depot(code=code, name=name, district_id=district_id)
    session.add(depot)
    audit.record(session, actor=actor, action="depot.create", entity=depot)
    return depot


def stock_of(session: Session, depot: Depot) -> list[StockItem]:
    """The depot's stock rows, by material code."""
    return list(session.execute(
        select(StockItem).where(StockItem.depot_id == depot.id).order_by(StockItem.material_code)
    ).scalars())


def receive(
    session: Session, depot_code: str, lines: Mapping[str, float], *, actor: Principal
) -> list[StockItem]:
    """Book delivered materials into a depot (storekeeper, admin); unknown codes are refused."""
    _require_store(actor)
    depot = get_depot_or_raise(session, depot_code)
    _check_material_codes(lines)
    problems = [f"{code}: quantity must be > 0" for code, q in lines.items() if not q > 0]
    if problems:
        raise ValidationFailed(
            "; ".join(problems),
            code="stock.quantity_not_positive",
            params={"material_codes": sorted(c for c, q in lines.items() if not q > 0)},
        )
    touched = []
    for code in sorted(lines):
        qty = rules.to_milli(lines[code])
        item = _stock_row(session, depot.id, code)
        session.execute(
            update(StockItem)
            .where(StockItem.id == item.id)
            .values(on_hand_milli=StockItem.on_hand_milli + qty, updated_at=clock.now())
            .execution_options(synchronize_session=False, **audit.CALLER_RECORDS)
        )
        _movement(session, depot.id, code, "receipt", on_hand=qty, actor=actor)
        touched.append(_refreshed(session, item, actor, "stock.receive"))
    return touched


def set_reorder_level(
    session: Session, depot_code: str, material_code: str, level: float, *, actor: Principal
) -> StockItem:
    """The quantity at or below which the material shows in the low-stock report."""
    _require_store(actor)
    depot = get_depot_or_raise(session, depot_code)
    _check_material_codes([material_code])
    if level < 0:
        raise ValidationFailed("the reorder level must be ≥ 0", code="stock.reorder_level_negative")
    item = _stock_row(session, depot.id, material_code)
    item.reorder_level_milli = rules.to_milli(level)
    item.updated_at = clock.now()
    audit.record(session, actor=actor, action="stock.reorder_level", entity=item)
    return item


def low_stock(session: Session, *, actor: Principal, depot_code: str | None = None) -> list[
    tuple[Depot, StockItem]
]:
    """Stock rows whose available quantity is at or below their reorder level (planners)."""
    if actor.role not in (Role.planner, Role.storekeeper, Role.admin):
        raise Forbidden(
            f"{actor.role.value} may not read the low-stock report",
            code="stock.report_forbidden",
            params={"role": actor.role.value},
        )
    available = StockItem.on_hand_milli - StockItem.reserved_milli
    query = (
        select(Depot, StockItem)
        .join(StockItem, StockItem.depot_id == Depot.id)
        .where(StockItem.reorder_level_milli > 0, available <= StockItem.reorder_level_milli)
        .order_by(Depot.code, StockItem.material_code)
    )
    if depot_code is not None:
        query = query.where(Depot.code == get_depot_or_raise(session, depot_code).code)
    return [(d, s) for d, s in session.execute(query).all()]


# --- reservations -----------------------------------------------------------------------------


def issued_for_order(session: Session, order_id: int) -> KitReservation | None:
    """The kit picked up for an order (issued or closed), or None: evidence of installation."""
    return session.execute(
        select(KitReservation)
        .where(KitReservation.order_id == order_id)
        .where(KitReservation.status.in_(("issued", "closed")))
        .order_by(KitReservation.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def reservations_of(session: Session, order_id: int, *, actor: Principal) -> list[KitReservation]:
    """The order's reservations, oldest first."""
    _order_for(session, order_id, actor, write=False)
    return list(session.execute(
        select(KitReservation).where(KitReservation.order_id == order_id)
        .order_by(KitReservation.id)
    ).scalars())


def lines_of(session: Session, reservation: KitReservation) -> list[ReservationLine]:
    """A reservation's lines, by material code."""
    return list(session.execute(
        select(ReservationLine).where(ReservationLine.reservation_id == reservation.id)
        .order_by(ReservationLine.material_code)
    ).scalars())


def get_reservation_or_raise(session: Session, reservation_id: int) -> KitReservation:
    """One reservation; 404 when unknown."""
    found = session.get(KitReservation, reservation_id)
    if found is None:
        raise NotFound(
            f"kit reservation {reservation_id} not found",
            code="kit.reservation_not_found",
            params={"reservation_id": reservation_id},
        )
    return found


def reserve_for_order(
    session: Session, order_id: int, *, depot_code: str, actor: Principal
) -> KitReservation:
    """Reserve the order's kit with the route's quantities from its accepted scheme.

    All materials or nothing: when the depot is short of anything, OutOfStock (409) lists every
    shortage and no stock is touched.
    """
    order = _order_for(session, order_id, actor, write=True)
    # lock the order row (PostgreSQL): two reservations for one order must not both pass the
    # "no active reservation" check; SQLite already serialises writing transactions
    session.execute(
        select(WorkOrder.id).where(WorkOrder.id == order.id).with_for_update()
    ).scalar_one()
    scheme = schemes.accepted_for_order_or_raise(session, order.id)
    if _active(session, order.id) is not None:
        raise Conflict(
            f"order {order.id} already has an active kit reservation",
            code="kit.already_reserved",
            params={"order_id": order.id},
        )
    depot = get_depot_or_raise(session, depot_code)
    try:
        wanted = rules.kit_lines(scheme.bill_of_materials)
    except ValueError as exc:
        raise ValidationFailed(
            f"scheme {scheme.id}: {exc}",
            code="kit.bill_invalid",
            params={"scheme_id": scheme.id, "reason": str(exc)},
        ) from exc
    reservation = KitReservation(
        order_id=order.id, depot_id=depot.id, kit_code=scheme.kit_code or "-",
        scheme_id=scheme.id, status="reserved", created_by=actor.user_id,
    )
    # the reservation, its lines and movements are written first and the depot's stock rows
    # locked last (every crew of a depot reserves from the same rows: the lock is held from the
    # first UPDATE to the commit); on a shortage the savepoint takes all of it back
    with session.begin_nested() as written:
        session.add(reservation)
        session.flush()
        for code, qty in sorted(wanted.items()):
            session.add(ReservationLine(reservation_id=reservation.id, material_code=code,
                                        quantity_milli=qty))
            _movement(session, depot.id, code, "reserve", reserved=qty, actor=actor,
                      reservation_id=reservation.id)
        audit.record(session, actor=actor, action="kit_reservation.reserve", entity=reservation)
        shortages = _take(session, depot.id, wanted)
        if shortages:
            written.rollback()
    if shortages:
        raise OutOfStock(
            {
                "message": f"depot {depot.code} cannot supply kit {reservation.kit_code} in full",
                "shortages": [
                    {"material_code": s.material_code, "needed": rules.from_milli(s.needed_milli),
                     "available": rules.from_milli(s.available_milli)}
                    for s in shortages
                ],
            },
            code="kit.out_of_stock",
            params={"depot_code": depot.code, "kit_code": reservation.kit_code},
        )
    _audit_stock(session, depot.id, wanted, actor, "stock.reserve")
    return reservation


def issue(
    session: Session,
    reservation_id: int,
    *,
    meter_barcode: str,
    actor: Principal,
    settings: Settings | None = None,
) -> KitReservation:
    """Hand the kit to the crew at pick-up, recording the issued meter's barcode.

    The barcode is checked by the one meter-code rule (:func:`field_api.meters.meter_code`:
    22 digits, the configured check digit) that the crew's barcode upload uses, so a kit can
    never be issued with a meter the crew cannot then record.
    """
    _require_store(actor)
    rule = meters.configured_check_digit_rule(settings or settings_of(session))
    meter = meters.meter_code(meter_barcode, check_digit_rule=rule)
    reservation = get_reservation_or_raise(session, reservation_id)
    if reservation.status != "reserved":
        raise InvalidTransition(
            f"kit reservation {reservation.id} is {reservation.status}, not reserved",
            code="kit.not_reserved",
            params={"reservation_id": reservation.id, "status": str(reservation.status)},
        )
    lines = {line.material_code: line.quantity_milli for line in lines_of(session, reservation)}
    # the movements and the reservation's own change first, the depot's stock rows (locked
    # until the commit) last
    for code, qty in sorted(lines.items()):
        _movement(session, reservation.depot_id, code, "issue", on_hand=-qty, reserved=-qty,
                  actor=actor, reservation_id=reservation.id)
    reservation.status, reservation.meter_barcode = "issued", meter
    reservation.issued_by, reservation.issued_at = actor.user_id, clock.now()
    audit.record(session, actor=actor, action="kit_reservation.issue", entity=reservation)
    for code, qty in sorted(lines.items()):
        done = session.execute(
            update(StockItem)
            .where(StockItem.depot_id == reservation.depot_id,
                   StockItem.material_code == code,
                   StockItem.reserved_milli >= qty, StockItem.on_hand_milli >= qty)
            .values(on_hand_milli=StockItem.on_hand_milli - qty,
                    reserved_milli=StockItem.reserved_milli - qty, updated_at=clock.now())
            .execution_options(synchronize_session=False, **audit.CALLER_RECORDS)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            # only a stocktake outside the service can get here; refuse rather than go negative
            raise Conflict(
                f"depot stock of {code} no longer covers reservation {reservation.id}",
                code="kit.stock_changed",
                params={"material_code": code, "reservation_id": reservation.id},
            )
    _audit_stock(session, reservation.depot_id, lines, actor, "stock.issue")
    return reservation


def close(
    session: Session, reservation_id: int, *, consumed: Mapping[str, float], actor: Principal
) -> KitReservation:
    """Record what the crew consumed; the rest goes back on the depot's shelves."""
    _require_store(actor)
    reservation = get_reservation_or_raise(session, reservation_id)
    if reservation.status != "issued":
        raise InvalidTransition(
            f"kit reservation {reservation.id} is {reservation.status}, not issued",
            code="kit.not_issued",
            params={"reservation_id": reservation.id, "status": str(reservation.status)},
        )
    lines = {line.material_code: line for line in lines_of(session, reservation)}
    try:
        back = rules.returns({c: line.quantity_milli for c, line in lines.items()}, consumed)
    except ValueError as exc:
        raise ValidationFailed(
            str(exc),
            code="kit.returns_invalid",
            params={"reason": str(exc)},
        ) from exc
    for code, returned in sorted(back.items()):
        line = lines[code]
        line.returned_milli = returned
        line.consumed_milli = line.quantity_milli - returned
        if returned:
            session.execute(
                update(StockItem)
                .where(StockItem.depot_id == reservation.depot_id, StockItem.material_code == code)
                .values(on_hand_milli=StockItem.on_hand_milli + returned, updated_at=clock.now())
                .execution_options(synchronize_session=False, **audit.CALLER_RECORDS)
            )
            _movement(session, reservation.depot_id, code, "return", on_hand=returned,
                      actor=actor, reservation_id=reservation.id)
    reservation.status = "closed"
    reservation.closed_by, reservation.closed_at = actor.user_id, clock.now()
    audit.record(session, actor=actor, action="kit_reservation.close", entity=reservation)
    _audit_stock(session, reservation.depot_id, {c: r for c, r in back.items() if r}, actor,
                 "stock.return")
    return reservation


def return_to_stock(
    session: Session, reservation_id: int, *, actor: Principal
) -> KitReservation:
    """Book an issued kit back on the depot's shelves, whole, before it was installed.

    The crew brings the kit back unused (a wrong kit, a changed scheme, a cancelled order):
    every line returns in full, the reservation ends ``returned`` and the order may reserve
    again. After installation the kit is closed with its consumption instead (409).
    """
    _require_store(actor)
    reservation = get_reservation_or_raise(session, reservation_id)
    if reservation.status != "issued":
        raise InvalidTransition(
            f"kit reservation {reservation.id} is {reservation.status}, not issued",
            code="kit.not_issued",
            params={"reservation_id": reservation.id, "status": str(reservation.status)},
        )
    _ensure_not_installed(session, reservation)
    _return_whole_kit(session, reservation, actor=actor, status="returned")
    return reservation


def _ensure_not_installed(session: Session, reservation: KitReservation) -> None:
    order = orders.get_or_raise(session, reservation.order_id)
    if order.stage in INSTALLED_OR_LATER:
        raise Conflict(
            f"order {order.id} is {order.stage.value}: the meter of kit reservation "
            f"{reservation.id} is installed; close the reservation with what was consumed",
            code="kit.already_installed",
            params={
                "reservation_id": reservation.id,
                "order_id": order.id,
                "stage": order.stage.value,
            },
        )


def _return_whole_kit(
    session: Session, reservation: KitReservation, *, actor: Principal, status: str
) -> None:
    lines = {line.material_code: line for line in lines_of(session, reservation)}
    for code, line in sorted(lines.items()):
        line.consumed_milli, line.returned_milli = 0, line.quantity_milli
        session.execute(
            update(StockItem)
            .where(StockItem.depot_id == reservation.depot_id, StockItem.material_code == code)
            .values(
                on_hand_milli=StockItem.on_hand_milli + line.quantity_milli,
                updated_at=clock.now(),
            )
            .execution_options(synchronize_session=False, **audit.CALLER_RECORDS)
        )
        _movement(session, reservation.depot_id, code, "return", on_hand=line.quantity_milli,
                  actor=actor, reservation_id=reservation.id)
    reservation.status = status
    reservation.closed_by, reservation.closed_at = actor.user_id, clock.now()
    session.flush()
    for line in lines.values():
        audit.record(session, actor=actor, action=f"kit_reservation_line.{status}", entity=line)
    audit.record(session, actor=actor, action=f"kit_reservation.{status}", entity=reservation)
    _audit_stock(session, reservation.depot_id, dict.fromkeys(lines, 1), actor, "stock.return")


def cancel(session: Session, reservation_id: int, *, actor: Principal) -> KitReservation:
    """Release a reservation that was not picked up, or cancel an issued one before
    installation (the storekeeper books the whole kit back on the shelves)."""
    reservation = get_reservation_or_raise(session, reservation_id)
    _order_for(session, reservation.order_id, actor, write=True)
    if reservation.status == "issued":
        _require_store(actor)
        _ensure_not_installed(session, reservation)
        _return_whole_kit(session, reservation, actor=actor, status="cancelled")
        return reservation
    if reservation.status != "reserved":
        raise InvalidTransition(
            f"kit reservation {reservation.id} is {reservation.status}; only a reserved kit, "
            "or an issued one before installation, can be cancelled",
            code="kit.cancel_refused",
            params={"reservation_id": reservation.id, "status": str(reservation.status)},
        )
    lines = {line.material_code: line.quantity_milli for line in lines_of(session, reservation)}
    for code, qty in sorted(lines.items()):
        session.execute(
            update(StockItem)
            .where(StockItem.depot_id == reservation.depot_id, StockItem.material_code == code,
                   StockItem.reserved_milli >= qty)
            .values(reserved_milli=StockItem.reserved_milli - qty, updated_at=clock.now())
            .execution_options(synchronize_session=False, **audit.CALLER_RECORDS)
        )
        _movement(session, reservation.depot_id, code, "release", reserved=-qty, actor=actor,
                  reservation_id=reservation.id)
    reservation.status = "cancelled"
    audit.record(session, actor=actor, action="kit_reservation.cancel", entity=reservation)
    _audit_stock(session, reservation.depot_id, lines, actor, "stock.release")
    return reservation


# --- helpers ----------------------------------------------------------------------------------


def _take(session: Session, depot_id: int, wanted: Mapping[str, int]) -> list[Shortage]:
    """Reserve every line inside a SAVEPOINT; on any shortage undo all and report them all."""
    shortages: list[Shortage] = []
    with session.begin_nested() as savepoint:
        for code, qty in sorted(wanted.items()):
            enough: ColumnElement[bool] = (
                StockItem.on_hand_milli - StockItem.reserved_milli >= qty
            )
            done = session.execute(
                update(StockItem)
                .where(StockItem.depot_id == depot_id, StockItem.material_code == code, enough)
                .values(reserved_milli=StockItem.reserved_milli + qty, updated_at=clock.now())
                .execution_options(synchronize_session=False, **audit.CALLER_RECORDS)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                shortages.append(Shortage(code, qty, _available(session, depot_id, code)))
        if shortages:
            savepoint.rollback()
    return shortages


def _available(session: Session, depot_id: int, code: str) -> int:
    row = session.execute(
        select(StockItem.on_hand_milli - StockItem.reserved_milli)
        .where(StockItem.depot_id == depot_id, StockItem.material_code == code)
    ).scalar_one_or_none()
    return int(row or 0)


def _stock_row(session: Session, depot_id: int, code: str) -> StockItem:
    """The depot's stock row of ``code``, created (empty) if it has none yet."""
    item = session.execute(
        select(StockItem).where(StockItem.depot_id == depot_id, StockItem.material_code == code)
    ).scalar_one_or_none()
    if item is None:
        item = StockItem(depot_id=depot_id, material_code=code, on_hand_milli=0,
                         reserved_milli=0, reorder_level_milli=0)
        session.add(item)
        session.flush()
    return item


def _refreshed(session: Session, item: StockItem, actor: Principal, action: str) -> StockItem:
    session.refresh(item)  # the conditional UPDATE bypassed the identity map
    audit.record(session, actor=actor, action=action, entity=item)
    return item


def _audit_stock(
    session: Session, depot_id: int, codes: Mapping[str, int], actor: Principal, action: str
) -> None:
    """Record the depot's stock rows of ``codes`` as they are now, by material code.

    Called while the rows are locked by their conditional UPDATEs: one query finds them, and
    each event reads its row's stored values (:func:`audit.record`) instead of refreshing the
    object first, so the lock is held for as few statements as possible."""
    items = session.execute(
        select(StockItem)
        .where(StockItem.depot_id == depot_id, StockItem.material_code.in_(sorted(codes)))
        .order_by(StockItem.material_code)
    ).scalars().all()
    missing = sorted(set(codes) - {item.material_code for item in items})
    if missing:
        raise NotFound(
            f"no stock row for {missing[0]}",
            code="stock.row_not_found",
            params={"material_code": missing[0]},
        )
    for item in items:
        audit.record(session, actor=actor, action=action, entity=item)
        session.expire(item)  # loaded before the UPDATE took effect: reload on next use


def _movement(
    session: Session, depot_id: int, code: str, kind: str, *, on_hand: int = 0,
    reserved: int = 0, actor: Principal, reservation_id: int | None = None,
) -> None:
    session.add(StockMovement(
        depot_id=depot_id, material_code=code, kind=kind, on_hand_delta_milli=on_hand,
        reserved_delta_milli=reserved, reservation_id=reservation_id, actor_id=actor.user_id,
    ))


def _active(session: Session, order_id: int) -> KitReservation | None:
    return session.execute(
        select(KitReservation)
        .where(KitReservation.order_id == order_id, KitReservation.status.in_(ACTIVE))
        .limit(1)
    ).scalar_one_or_none()


def _order_for(session: Session, order_id: int, actor: Principal, *, write: bool) -> WorkOrder:
    """The order, for its own crew, the storekeeper (who reserves for crews) or an admin."""
    if actor.role in STORE_ROLES:
        return orders.get_or_raise(session, order_id)
    return orders.get_for_actor(session, order_id, actor, write=write)


def _require_store(actor: Principal) -> None:
    if actor.role not in STORE_ROLES:
        raise Forbidden(
            f"{actor.role.value} may not manage depot stock (storekeeper, admin)",
            code="stock.forbidden",
            params={"role": actor.role.value},
        )


def _check_material_codes(codes: Sequence[str] | Mapping[str, float]) -> None:
    catalogue = load_catalogue()
    unknown = sorted(c for c in codes if catalogue.get_material(c) is None)
    if unknown:
        raise ValidationFailed(
            f"unknown material code(s): {', '.join(unknown)}",
            code="material.unknown",
            params={"material_codes": list(unknown)},
        )
