"""The evidence a card is checked against, gathered from the other slices.

Photo counts and the meter barcode come from the media slice (its stored items: photos only,
the scanned value against the value the server decoded from the photo); scheme figures from
the order's accepted scheme; the issued meter from the depot stock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from field_api.checklists.rules import CheckContext
from field_api.kits import service as kits
from field_api.media import service as media
from field_api.media.models import AnalysisState
from field_api.schemes import service as schemes
from field_api.work_orders.models import WorkOrder


@dataclass(frozen=True)
class OrderEvidence:
    """The check context of an order plus what selects its card."""

    context: CheckContext
    metering: str | None
    kit_code: str | None
    kit_issued: bool
    """A kit was picked up at a depot for the order (not part of the stored snapshot)."""

    def snapshot(self) -> dict[str, Any]:
        """JSON form stored with a submission (what the verdict was based on)."""
        values = asdict(self.context)
        values["photo_counts"] = dict(self.context.photo_counts)
        return {**values, "metering": self.metering, "kit_code": self.kit_code}


@dataclass(frozen=True)
class BarcodeEvidence:
    """The latest meter barcode photo of an order: what was scanned and what was decoded."""

    scanned: str | None
    decoded: str | None
    pending: bool = False


def meter_barcode(session: Session, order_id: int) -> BarcodeEvidence:
    """What was scanned with the latest barcode photo, and what the server decoded from it."""
    item = media.latest_barcode(session, order_id)
    if item is None:
        return BarcodeEvidence(None, None)
    pending = item.analysis == AnalysisState.pending
    return BarcodeEvidence(item.scanned_value, item.decoded_value, pending)


def gather(session: Session, order: WorkOrder) -> OrderEvidence:
    """Collect the evidence on record for ``order`` (the media, the accepted scheme and the
    issued kit, each read once)."""
    barcode = meter_barcode(session, order.id)
    scheme = schemes.accepted_for_order(session, order.id)
    issued = kits.issued_for_order(session, order.id)
    context = CheckContext(
        scheme_cable_section_mm2=scheme.cable_section_mm2 if scheme else None,
        scheme_breaker_rating_a=scheme.breaker_rating_a if scheme else None,
        scheme_ct_primary_a=scheme.ct_primary_a if scheme else None,
        scanned_barcode=barcode.scanned,
        decoded_barcode=barcode.decoded,
        issued_meter_barcode=issued.meter_barcode if issued else None,
        photo_counts=media.photo_counts(session, order.id),
        transformer_rated_kva=scheme.transformer_rated_kva if scheme else None,
        barcode_analysis_pending=barcode.pending,
    )
    return OrderEvidence(
        context=context,
        metering=scheme.metering if scheme else None,
        kit_code=scheme.kit_code if scheme else None,
        kit_issued=issued is not None,
    )
