"""Request and response bodies of depots, stock and kit reservations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from field_api.kits.models import Depot, KitReservation, ReservationLine, StockItem
from field_api.kits.rules import from_milli
from field_api.types import Code32, Text
from standard_kits import load_catalogue
from standard_kits.schemas import ConnectionKit, RepairKit

_CODE = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
# a finite quantity in the material's unit (JSON parsers accept Infinity/NaN; stock must not)
Quantity = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class KitsRead(BaseModel):
    """Every standard kit."""

    connection_kits: list[ConnectionKit]
    repair_kits: list[RepairKit]


class DepotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Text = Field(min_length=1, max_length=32, pattern=_CODE)
    name: Text = Field(min_length=1, max_length=200)
    district_code: Text | None = Field(default=None, max_length=32)


class DepotRead(BaseModel):
    id: int
    code: str
    name: str
    district_id: int | None

    @classmethod
    def of(cls, depot: Depot) -> DepotRead:
        return cls(id=depot.id, code=depot.code, name=depot.name, district_id=depot.district_id)


class ReceiptCreate(BaseModel):
    """Delivered materials: material code → quantity in the material's unit."""

    model_config = ConfigDict(extra="forbid")

    lines: dict[Code32, Quantity] = Field(min_length=1, max_length=500)


class ReorderLevelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: float = Field(ge=0, le=1e9)


class StockRead(BaseModel):
    """One material in one depot, in the material's unit."""

    depot_code: str
    material_code: str
    name_zh: str
    name_en: str
    unit: str
    on_hand: float
    reserved: float
    available: float
    reorder_level: float

    @classmethod
    def of(cls, depot: Depot, item: StockItem) -> StockRead:
        material = load_catalogue().get_material(item.material_code)
        return cls(
            depot_code=depot.code, material_code=item.material_code,
            name_zh=material.name.zh if material else "",
            name_en=material.name.en if material else "",
            unit=material.unit if material else "",
            on_hand=from_milli(item.on_hand_milli), reserved=from_milli(item.reserved_milli),
            available=from_milli(item.on_hand_milli - item.reserved_milli),
            reorder_level=from_milli(item.reorder_level_milli),
        )


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depot_code: Text = Field(min_length=1, max_length=32)


class IssueCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    meter_barcode: str = Field(
        min_length=1,
        max_length=64,
        description="The 22-digit State Grid asset code of the meter handed over (spaces and "
        "hyphens between digit groups are dropped); checked by the one meter-code rule "
        "(field_api.meters), as the crew's barcode upload is.",
    )


class CloseCreate(BaseModel):
    """What the crew consumed per material; the rest is returned to the depot."""

    model_config = ConfigDict(extra="forbid")

    consumed: dict[Code32, Quantity] = Field(max_length=500)


class ReservationLineRead(BaseModel):
    material_code: str
    unit: str
    quantity: float
    consumed: float | None
    returned: float | None

    @classmethod
    def of(cls, line: ReservationLine) -> ReservationLineRead:
        material = load_catalogue().get_material(line.material_code)
        return cls(
            material_code=line.material_code, unit=material.unit if material else "",
            quantity=from_milli(line.quantity_milli),
            consumed=None if line.consumed_milli is None else from_milli(line.consumed_milli),
            returned=None if line.returned_milli is None else from_milli(line.returned_milli),
        )


class ReservationRead(BaseModel):
    id: int
    order_id: int
    depot_id: int
    kit_code: str
    scheme_id: int | None
    status: str
    meter_barcode: str | None
    created_at: datetime
    issued_at: datetime | None
    closed_at: datetime | None
    lines: list[ReservationLineRead]

    @classmethod
    def of(cls, reservation: KitReservation, lines: list[ReservationLine]) -> ReservationRead:
        return cls(
            id=reservation.id, order_id=reservation.order_id, depot_id=reservation.depot_id,
            kit_code=reservation.kit_code, scheme_id=reservation.scheme_id,
            status=reservation.status, meter_barcode=reservation.meter_barcode,
            created_at=reservation.created_at, issued_at=reservation.issued_at,
            closed_at=reservation.closed_at, lines=[ReservationLineRead.of(x) for x in lines],
        )
