"""Request and response bodies of supply schemes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from field_api.schemes.models import SupplyScheme
from field_api.types import Text


class SchemeCreate(BaseModel):
    """A crew's scheme request for its order; the order gives category, phases and capacity."""

    model_config = ConfigDict(extra="forbid")

    lon: float | None = Field(default=None, ge=-180, le=180, description="Surveyed position.")
    lat: float | None = Field(default=None, ge=-90, le=90, description="Surveyed position.")
    laying_method: Text | None = Field(
        default=None, max_length=8, description="E (air/tray) or D1 (duct in ground)."
    )
    preferred_cable: Text | None = Field(
        default=None, max_length=32, description="A cable to try first, e.g. what is on the truck."
    )
    accept: bool = Field(
        default=True, description="Save a passing scheme as the order's scheme (scheme_answered)."
    )

    @model_validator(mode="after")
    def _position_whole(self) -> SchemeCreate:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat of the surveyed position, or neither")
        return self


class CableCheckRead(BaseModel):
    code: str
    conductor: str
    section_mm2: float
    ampacity_a: float
    r_ohm_per_km: float
    x_ohm_per_km: float
    voltage_drop_pct: float
    max_length_m: float | None
    passed: bool
    reason: str | None


class BomLineRead(BaseModel):
    material_code: str
    name_zh: str
    name_en: str
    unit: str
    quantity: float
    role: str


class RuleFailureRead(BaseModel):
    rule: str
    detail: str
    transformer_id: str | None = Field(description="The transformer's code.")


class WhiteListRead(BaseModel):
    reason: str
    detail: str


class SchemeFiguresRead(BaseModel):
    """Every figure of a scheme that meets the rules."""

    kit_code: str
    transformer_id: str = Field(description="The supplying transformer's code.")
    transformer_rated_kva: float
    transformer_spare_kva_before: float
    transformer_spare_kva_after: float
    distance_m: float
    route_length_m: float
    route_method: Literal["along_line", "straight_line"]
    detour_factor: float | None
    laying_method: str
    cable: CableCheckRead
    breaker_code: str
    breaker_rating_a: float
    metering: Literal["direct", "ct"]
    meter_code: str
    ct_code: str | None
    ct_primary_a: float | None
    voltage_drop_budget_pct: float
    nominal_voltage_v: float
    terminal_voltage_v: float
    terminal_voltage_limits_v: tuple[float, float]
    bill_of_materials: list[BomLineRead]
    cables_considered: list[CableCheckRead]


class SchemeRead(BaseModel):
    """The engine's answer for an order, as saved."""

    id: int
    order_id: int
    status: str
    accepted: bool
    created_at: datetime
    category: str
    phases: int
    capacity_kw: float
    cos_phi: float
    load_current_a: float
    load_kva: float
    kit_code: str | None
    scheme: SchemeFiguresRead | None
    failures: list[RuleFailureRead]
    white_list: WhiteListRead | None
    proposals: list[str]

    @classmethod
    def of(cls, row: SupplyScheme) -> SchemeRead:
        answer: dict[str, Any] = dict(row.answer)
        return cls(
            id=row.id, order_id=row.order_id, status=row.status,
            accepted=answer.get("scheme") is not None, created_at=row.created_at, **answer,
        )
