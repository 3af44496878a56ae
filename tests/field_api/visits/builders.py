"""Typed builders of the evidence other slices keep for an order (scheme, kit, photos).

Rows are written as those slices store them, so the checklist and visit services read real
evidence through the schemes, kits and media services.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

from sqlalchemy.orm import Session

from field_api.kits.models import Depot, KitReservation
from field_api.media.analysis import MediaType
from field_api.media.models import AnalysisState, MediaItem
from field_api.media.rules import MediaKind
from field_api.schemes.models import SupplyScheme
from field_api.work_orders.models import WorkOrder

METER = "1100101234567890123456"
ALL_PHOTOS = ("site", "meter_box", "wiring", "seal", "barcode", "meter_after")


def make_scheme(session: Session, order: WorkOrder, *, kit_code: str = "R1") -> SupplyScheme:
    """An accepted single-phase, direct-metered scheme (16 mm² Cu, 2P 63 A) on a 400 kVA unit."""
    scheme = SupplyScheme(
        order_id=order.id,
        status="accepted",
        kit_code=kit_code,
        transformer_code="NS-T-012",
        transformer_rated_kva=400.0,
        lon=order.lon,
        lat=order.lat,
        load_current_a=40.4,
        load_kva=8.9,
        cos_phi=0.9,
        route_length_m=35.0,
        cable_code="CAB-CU-2X16",
        cable_section_mm2=16.0,
        breaker_code="BRK-2P-63",
        breaker_rating_a=63.0,
        metering="direct",
        meter_code="MTR-1P-5-60",
        voltage_drop_pct=1.2,
        terminal_voltage_v=224.0,
        bill_of_materials=[],
        answer={},
    )
    session.add(scheme)
    session.flush()
    return scheme


def make_issued_kit(session: Session, order: WorkOrder, *, meter: str = METER) -> KitReservation:
    """A kit picked up at a depot for the order, with the issued meter's barcode."""
    depot = Depot(code=f"DEP-{uuid.uuid4().hex[:6]}", name="测试仓")
    session.add(depot)
    session.flush()
    reservation = KitReservation(
        order_id=order.id, depot_id=depot.id, kit_code="R1", status="issued", meter_barcode=meter
    )
    session.add(reservation)
    session.flush()
    return reservation


def make_photos(
    session: Session,
    order: WorkOrder,
    kinds: Iterable[str] = ALL_PHOTOS,
    *,
    scanned: str | None = METER,
    decoded: str | None = METER,
) -> list[MediaItem]:
    """Analysed photos of the given kinds; the barcode photo carries scanned/decoded values."""
    items = []
    for kind in kinds:
        is_barcode = kind == "barcode"
        item = MediaItem(
            client_id=str(uuid.uuid4()),
            order_id=order.id,
            stage=order.stage,
            kind=MediaKind(kind),
            media_type=MediaType.jpeg,
            sha256=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            size_bytes=1234,
            scanned_value=scanned if is_barcode else None,
            decoded_value=decoded if is_barcode else None,
            barcode_match=(scanned == decoded) if is_barcode else None,
            analysis=AnalysisState.done,
        )
        session.add(item)
        items.append(item)
    session.flush()
    return items


def make_evidence(session: Session, order: WorkOrder) -> None:
    """Everything a complete single-phase R1 installation leaves on record."""
    make_scheme(session, order)
    make_issued_kit(session, order)
    make_photos(session, order)
