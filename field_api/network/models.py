"""Distribution transformers, their LV lines, imports, and the connections they supply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from field_api.common import clock
from field_api.db import Audited, Base


class Transformer(Base):
    """A distribution transformer (配变); ``base_load_kva`` is the load measured at import."""

    __tablename__ = "network_transformers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    rated_kva: Mapped[float]
    base_load_kva: Mapped[float]
    load_measured_at: Mapped[datetime] = mapped_column(default=clock.now)
    lon: Mapped[float] = mapped_column(index=True)
    lat: Mapped[float] = mapped_column(index=True)
    # The MV feeder and the district it belongs to (set by the reliability slice's feeder
    # section import; empty until then).
    feeder: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    district: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class LvLine(Base):
    """A low-voltage line fed by one transformer; ``coords`` is a list of [lon, lat]."""

    __tablename__ = "network_lv_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    transformer_id: Mapped[int] = mapped_column(
        ForeignKey("network_transformers.id"), index=True
    )
    coords: Mapped[list[list[float]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class Connection(Audited, Base):
    """A customer load committed to a transformer by an accepted scheme.

    It counts against the transformer's spare capacity once energised (after the transformer's
    load was measured); until then it is committed and kept apart so schemes do not double-book.
    """

    __tablename__ = "network_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), unique=True)
    transformer_id: Mapped[int] = mapped_column(
        ForeignKey("network_transformers.id"), index=True
    )
    load_kva: Mapped[float]
    committed_at: Mapped[datetime] = mapped_column(default=clock.now)
    energised_at: Mapped[datetime | None] = mapped_column(default=None)
    released_at: Mapped[datetime | None] = mapped_column(default=None)


class NetworkImport(Audited, Base):
    """One import of network data (the audited record of a bulk load)."""

    __tablename__ = "network_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    file_format: Mapped[str] = mapped_column(String(16))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=clock.now)
