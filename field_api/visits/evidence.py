"""The evidence each one-visit stage needs, gathered from the other slices' services.

Each function returns the gaps (missing evidence) of one stage; an empty list means the
stage's evidence is complete.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from field_api.checklists import evidence as check_evidence
from field_api.checklists import service as checklists
from field_api.contracts import service as contracts
from field_api.visits.models import Visit
from field_api.visits.rules import ONE_VISIT_STAGES, Gap
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage

FIELD_PATH = ONE_VISIT_STAGES


def survey_gaps(
    session: Session, order: WorkOrder, visit: Visit, *, max_arrival_distance_m: float
) -> list[Gap]:
    """On site (arrival GPS near the order) with a photo of the site."""
    gaps: list[Gap] = []
    if visit.arrival_distance_m > max_arrival_distance_m:
        gaps.append(
            Gap.of(
                Stage.surveyed,
                "arrival_position",
                "gap.arrival_position",
                distance_m=round(visit.arrival_distance_m),
                limit_m=round(max_arrival_distance_m),
            )
        )
    counts = check_evidence.gather(session, order).context.photo_counts
    if counts.get("site", 0) < 1:
        gaps.append(Gap.of(Stage.surveyed, "photo_site", "gap.photo_site"))
    return gaps


def scheme_gaps(session: Session, order: WorkOrder) -> list[Gap]:
    """An accepted supply scheme saved on the order."""
    gathered = check_evidence.gather(session, order)
    if gathered.kit_code is None:
        return [Gap.of(Stage.scheme_answered, "scheme", "gap.scheme")]
    return []


def contract_gaps(session: Session, order: WorkOrder) -> list[Gap]:
    """The contract signed by the customer."""
    if contracts.is_signed(session, order.id):
        return []
    if contracts.get(session, order.id) is None:
        return [Gap.of(Stage.contract_signed, "contract", "gap.contract_missing")]
    return [Gap.of(Stage.contract_signed, "contract", "gap.contract_unsigned")]


def installation_gaps(session: Session, order: WorkOrder) -> list[Gap]:
    """Kit issued, meter barcode scanned and decoded from its photo and matching the issue."""
    context = check_evidence.gather(session, order).context
    gaps: list[Gap] = []
    if not check_evidence.kit_issued(session, order):
        gaps.append(Gap.of(Stage.installed, "kit_issued", "gap.kit_issued"))
    scanned = (context.scanned_barcode or "").strip()
    decoded = (context.decoded_barcode or "").strip()
    issued = (context.issued_meter_barcode or "").strip()
    if not scanned:
        gaps.append(Gap.of(Stage.installed, "meter_barcode", "gap.meter_barcode"))
    elif not decoded:
        gaps.append(Gap.of(Stage.installed, "meter_barcode", "gap.meter_barcode_unreadable"))
    elif scanned != decoded:
        gaps.append(
            Gap.of(
                Stage.installed,
                "meter_barcode",
                "gap.meter_barcode_differs",
                scanned=scanned,
                decoded=decoded,
            )
        )
    elif issued and scanned != issued:
        gaps.append(
            Gap.of(
                Stage.installed,
                "meter_barcode",
                "gap.meter_not_issued",
                scanned=scanned,
                issued=issued,
            )
        )
    return gaps


def check_gaps(session: Session, order: WorkOrder, phase: str, stage: Stage) -> list[Gap]:
    """A passed completion check of ``phase``, else the failing items of the last attempt."""
    if checklists.has_passed(session, order.id, phase):
        return []
    attempts = checklists.submissions_of(session, order.id, phase=phase)
    if not attempts:
        return [Gap.of(stage, f"check_{phase}", "gap.check_missing", phase=phase)]
    last = attempts[-1]
    failed = [
        i for i in checklists.items_of(session, [last.id])[last.id] if not i.passed and i.critical
    ]
    names = {  # each item's name in both languages (the stored one when the card is gone)
        lang: checklists.item_labels(last.card_code, last.card_version, lang)
        for lang in ("zh-CN", "en")
    }
    return [
        Gap.of(
            stage,
            f"check_{phase}.{i.item_code}",
            "gap.check_item_failed",
            attempt=last.attempt,
            label={lang: names[lang].get(i.item_code, i.label) for lang in names},
            reason=i.params or i.reason,  # the item's message, rendered in the same language
        )
        for i in failed
    ] or [Gap.of(stage, f"check_{phase}", "gap.check_failed", attempt=last.attempt)]


def gaps_by_stage(
    session: Session, order: WorkOrder, visit: Visit, *, max_arrival_distance_m: float
) -> dict[Stage, list[Gap]]:
    """The gaps of every one-visit stage."""
    return {
        Stage.surveyed: survey_gaps(
            session, order, visit, max_arrival_distance_m=max_arrival_distance_m
        ),
        Stage.scheme_answered: scheme_gaps(session, order),
        Stage.contract_signed: contract_gaps(session, order),
        Stage.installed: installation_gaps(session, order),
        Stage.inspected: check_gaps(session, order, "before_energising", Stage.inspected),
        Stage.energised: check_gaps(session, order, "supply_on", Stage.energised),
    }
