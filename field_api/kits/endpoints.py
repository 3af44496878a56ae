"""HTTP endpoints of kits, materials, depots, stock and kit reservations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from field_api.deps import CurrentUser, DbSession
from field_api.errors import NotFound
from field_api.kits import service
from field_api.kits.schemas import (
    CloseCreate,
    DepotCreate,
    DepotRead,
    IssueCreate,
    KitsRead,
    ReceiptCreate,
    ReorderLevelUpdate,
    ReservationCreate,
    ReservationRead,
    StockRead,
)
from field_api.paging import Page
from field_api.types import CodePath, IdPath, Text
from standard_kits import load_catalogue
from standard_kits.schemas import ConnectionKit, Material, RepairKit

router = APIRouter(tags=["kits and stock"])


@router.get("/kits")
def list_kits(user: CurrentUser) -> KitsRead:
    """Every standard connection and repair kit."""
    cat = load_catalogue()
    return KitsRead(connection_kits=list(cat.connection_kits), repair_kits=list(cat.repair_kits))


@router.get("/kits/{code}")
def get_kit(code: CodePath, user: CurrentUser) -> ConnectionKit | RepairKit:
    """One standard kit by code."""
    cat = load_catalogue()
    kit = cat.get_connection_kit(code) or next(
        (k for k in cat.repair_kits if k.code == code), None
    )
    if kit is None:
        raise NotFound(f"kit {code} not found", code="kit.not_found", params={"kit_code": code})
    return kit


@router.get("/materials")
def list_materials(
    page: Page,
    user: CurrentUser, kind: Annotated[Text | None, Query(max_length=16)] = None
) -> list[Material]:
    """The material catalogue, optionally of one kind (cable, breaker, meter, ct, ...)."""
    materials = load_catalogue().materials.values()
    return page.apply([m for m in materials if kind is None or m.kind == kind])


@router.get("/materials/{code}")
def get_material(code: CodePath, user: CurrentUser) -> Material:
    """One material by code."""
    material = load_catalogue().get_material(code)
    if material is None:
        raise NotFound(
            f"material {code} not found",
            code="material.not_found",
            params={"material_code": code},
        )
    return material


@router.post("/depots", status_code=status.HTTP_201_CREATED)
def create_depot(body: DepotCreate, session: DbSession, user: CurrentUser) -> DepotRead:
    """Open a depot (storekeeper, admin)."""
    depot = service.create_depot(
        session, code=body.code, name=body.name, district_code=body.district_code, actor=user
    )
    return DepotRead.of(depot)


@router.get("/depots")
def list_depots(page: Page, session: DbSession, user: CurrentUser) -> list[DepotRead]:
    """Every depot."""
    return page.apply([DepotRead.of(d) for d in service.list_depots(session)])


@router.get("/depots/{code}/stock")
def depot_stock(
    page: Page, code: CodePath, session: DbSession, user: CurrentUser
) -> list[StockRead]:
    """The depot's stock per material: on hand, reserved, available."""
    depot = service.get_depot_or_raise(session, code)
    return page.apply([StockRead.of(depot, item) for item in service.stock_of(session, depot)])


@router.post("/depots/{code}/receipts", status_code=status.HTTP_201_CREATED)
def receive_stock(
    code: CodePath, body: ReceiptCreate, session: DbSession, user: CurrentUser
) -> list[StockRead]:
    """Book delivered materials into the depot (storekeeper, admin)."""
    items = service.receive(session, code, body.lines, actor=user)
    depot = service.get_depot_or_raise(session, code)
    return [StockRead.of(depot, item) for item in items]


@router.put("/depots/{code}/stock/{material_code}/reorder-level")
def set_reorder_level(
    code: CodePath, material_code: CodePath, body: ReorderLevelUpdate, session: DbSession,
    user: CurrentUser,
) -> StockRead:
    """Set the level at which the material appears in the low-stock report."""
    item = service.set_reorder_level(session, code, material_code, body.level, actor=user)
    return StockRead.of(service.get_depot_or_raise(session, code), item)


@router.get("/stock/low")
def low_stock(
    page: Page,
    session: DbSession, user: CurrentUser,
    depot: Annotated[Text | None, Query(max_length=32)] = None,
) -> list[StockRead]:
    """Materials at or below their reorder level, per depot (planners, storekeepers)."""
    rows = service.low_stock(session, actor=user, depot_code=depot)
    return page.apply([StockRead.of(d, item) for d, item in rows])


@router.post("/work-orders/{order_id}/kit-reservations", status_code=status.HTTP_201_CREATED)
def reserve_kit(
    order_id: IdPath, body: ReservationCreate, session: DbSession, user: CurrentUser
) -> ReservationRead:
    """Reserve the order's kit with its route quantities: all materials or none (409)."""
    reservation = service.reserve_for_order(
        session, order_id, depot_code=body.depot_code, actor=user
    )
    return ReservationRead.of(reservation, service.lines_of(session, reservation))


@router.get("/work-orders/{order_id}/kit-reservations")
def list_reservations(
    page: Page,
    order_id: IdPath, session: DbSession, user: CurrentUser
) -> list[ReservationRead]:
    """The order's kit reservations, oldest first."""
    found = service.reservations_of(session, order_id, actor=user)
    return page.apply([ReservationRead.of(r, service.lines_of(session, r)) for r in found])


@router.post("/kit-reservations/{reservation_id}/issue")
def issue_kit(
    reservation_id: IdPath, body: IssueCreate, session: DbSession, user: CurrentUser
) -> ReservationRead:
    """Hand the reserved kit over at pick-up, with the issued meter's barcode (storekeeper)."""
    reservation = service.issue(
        session, reservation_id, meter_barcode=body.meter_barcode, actor=user
    )
    return ReservationRead.of(reservation, service.lines_of(session, reservation))


@router.post("/kit-reservations/{reservation_id}/close")
def close_kit(
    reservation_id: IdPath, body: CloseCreate, session: DbSession, user: CurrentUser
) -> ReservationRead:
    """Record what was consumed; the rest is returned to the depot (storekeeper)."""
    reservation = service.close(session, reservation_id, consumed=body.consumed, actor=user)
    return ReservationRead.of(reservation, service.lines_of(session, reservation))


@router.post("/kit-reservations/{reservation_id}/return")
def return_kit(
    reservation_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    session: DbSession,
    user: CurrentUser,
) -> ReservationRead:
    """Book an issued kit back into stock, whole, before installation (storekeeper, admin)."""
    reservation = service.return_to_stock(session, reservation_id, actor=user)
    return ReservationRead.of(reservation, service.lines_of(session, reservation))


@router.post("/kit-reservations/{reservation_id}/cancel")
def cancel_kit(reservation_id: IdPath, session: DbSession, user: CurrentUser) -> ReservationRead:
    """Release a reservation that was not picked up."""
    reservation = service.cancel(session, reservation_id, actor=user)
    return ReservationRead.of(reservation, service.lines_of(session, reservation))
