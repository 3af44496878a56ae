"""Depots, stock per material, kit reservations for orders, and the stock ledger.

Quantities are stored as integer thousandths of the material's unit (``*_milli``) so that
metres, pieces and 0.1 kg add up exactly; the check constraints are the last guard that stock
never goes negative nor is reserved beyond what is on hand.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base


class Depot(Audited, Base):
    """A store of standard materials (like the emergency-repair stores)."""

    __tablename__ = "depots"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class StockItem(Audited, Base):
    """One material in one depot: on hand, of which reserved for orders."""

    __tablename__ = "depot_stock"
    __table_args__ = (
        UniqueConstraint("depot_id", "material_code"),
        CheckConstraint("on_hand_milli >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved_milli >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved_milli <= on_hand_milli", name="reserved_within_on_hand"),
        CheckConstraint("reorder_level_milli >= 0", name="reorder_level_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    depot_id: Mapped[int] = mapped_column(ForeignKey("depots.id"), index=True)
    material_code: Mapped[str] = mapped_column(String(32))
    on_hand_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    reorder_level_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class KitReservation(Audited, Base):
    """A kit held for an order: ``reserved`` → ``issued`` (picked up) → ``closed`` (returns
    booked), or ``cancelled`` (before pick-up, or an issued kit booked back whole before
    installation), or ``returned`` (an issued kit brought back whole before installation)."""

    __tablename__ = "kit_reservations"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    depot_id: Mapped[int] = mapped_column(ForeignKey("depots.id"), index=True)
    kit_code: Mapped[str] = mapped_column(String(32))
    scheme_id: Mapped[int | None] = mapped_column(ForeignKey("supply_schemes.id"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    meter_barcode: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class ReservationLine(Audited, Base):
    """One material of a reservation with what was consumed and returned."""

    __tablename__ = "kit_reservation_lines"
    __table_args__ = (UniqueConstraint("reservation_id", "material_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("kit_reservations.id"), index=True)
    material_code: Mapped[str] = mapped_column(String(32))
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    consumed_milli: Mapped[int | None] = mapped_column(BigInteger, default=None)
    returned_milli: Mapped[int | None] = mapped_column(BigInteger, default=None)


class StockMovement(Audited, Base):
    """The stock ledger: every change of on-hand or reserved quantities, with its cause."""

    __tablename__ = "stock_movements"

    id: Mapped[int] = mapped_column(primary_key=True)
    depot_id: Mapped[int] = mapped_column(ForeignKey("depots.id"), index=True)
    material_code: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    on_hand_delta_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_delta_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("kit_reservations.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=clock.now)
