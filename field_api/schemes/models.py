"""Supply schemes computed for work orders: every figure, and which one was accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base


class SupplyScheme(Audited, Base):
    """One answer of the scheme engine for an order.

    ``status``: ``accepted`` (the order's scheme), ``superseded`` (an earlier accepted one),
    ``refused`` (no option met the rules) or ``proposed`` (computed but not taken).
    The key figures are columns for the other slices and reports; ``answer`` keeps the whole
    answer (bill of materials, cables tried, failed rules, proposals).
    """

    __tablename__ = "supply_schemes"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    kit_code: Mapped[str | None] = mapped_column(String(32))
    transformer_id: Mapped[int | None] = mapped_column(ForeignKey("network_transformers.id"))
    transformer_code: Mapped[str | None] = mapped_column(String(64))
    transformer_rated_kva: Mapped[float | None]
    lon: Mapped[float]
    lat: Mapped[float]
    load_current_a: Mapped[float]
    load_kva: Mapped[float]
    cos_phi: Mapped[float]
    route_length_m: Mapped[float | None]
    cable_code: Mapped[str | None] = mapped_column(String(32))
    cable_section_mm2: Mapped[float | None]
    breaker_code: Mapped[str | None] = mapped_column(String(32))
    breaker_rating_a: Mapped[float | None]
    metering: Mapped[str | None] = mapped_column(String(8))
    meter_code: Mapped[str | None] = mapped_column(String(32))
    ct_code: Mapped[str | None] = mapped_column(String(32))
    ct_primary_a: Mapped[float | None]
    voltage_drop_pct: Mapped[float | None]
    terminal_voltage_v: Mapped[float | None]
    white_list_proposed: Mapped[bool] = mapped_column(default=False)
    bill_of_materials: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
