"""The evidence of the one-visit stages, read once from the other slices into one snapshot.

:func:`snapshot` visits each slice once: the media, the accepted scheme and the issued kit
through :func:`field_api.checklists.evidence.gather` (what the completion check sees too), the
contract, and the order's completion checks (their submissions, then the items of the last
failed attempts). The pure rules of :mod:`field_api.visits.rules` judge every stage from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from field_api.checklists import evidence as check_evidence
from field_api.checklists import service as checklists
from field_api.checklists.models import ChecklistItemResult, ChecklistSubmission
from field_api.contracts import service as contracts
from field_api.contracts.models import Contract, ContractStatus
from field_api.visits import rules
from field_api.visits.models import Visit
from field_api.visits.rules import (
    LANGUAGES,
    ONE_VISIT_STAGES,
    CheckRecord,
    ContractState,
    EvidenceSnapshot,
    FailedItem,
    Gap,
)
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage

FIELD_PATH = ONE_VISIT_STAGES


def snapshot(session: Session, order: WorkOrder, visit: Visit) -> EvidenceSnapshot:
    """The order's evidence on record for the one-visit walk (each slice read once)."""
    gathered = check_evidence.gather(session, order)
    context = gathered.context
    return EvidenceSnapshot(
        arrival_distance_m=visit.arrival_distance_m,
        photo_counts=dict(context.photo_counts),
        scheme_kit_code=gathered.kit_code,
        contract=contract_state(contracts.get(session, order.id)),
        kit_issued=gathered.kit_issued,
        scanned_barcode=context.scanned_barcode,
        decoded_barcode=context.decoded_barcode,
        issued_meter_barcode=context.issued_meter_barcode,
        checks=check_records(session, order.id),
    )


def contract_state(contract: Contract | None) -> ContractState:
    """Whether the order's contract is missing, generated but unsigned, or signed."""
    if contract is None:
        return "missing"
    return "signed" if contract.status == ContractStatus.signed else "unsigned"


def check_records(session: Session, order_id: int) -> dict[str, CheckRecord]:
    """The order's completion checks by phase: passed or not, and the last attempt's failures.

    One read of the order's submissions; the items are read (in one query) only for the
    phases that never passed.
    """
    by_phase: dict[str, list[ChecklistSubmission]] = {}
    for row in checklists.submissions_of(session, order_id):  # oldest first
        by_phase.setdefault(row.phase, []).append(row)
    failing = {
        phase: rows[-1] for phase, rows in by_phase.items() if not any(r.passed for r in rows)
    }
    items = checklists.items_of(session, [last.id for last in failing.values()])
    records = {phase: CheckRecord(passed=True) for phase in by_phase if phase not in failing}
    for phase, last in failing.items():
        records[phase] = failed_record(last, items[last.id])
    return records


def failed_record(last: ChecklistSubmission, items: Sequence[ChecklistItemResult]) -> CheckRecord:
    """A phase that never passed: its last attempt, the critical items it failed and the
    names of its card's items in every language."""
    labels: Mapping[str, Mapping[str, str]] = {
        lang: checklists.item_labels(last.card_code, last.card_version, lang) for lang in LANGUAGES
    }
    return CheckRecord(
        passed=False,
        attempt=last.attempt,
        failed=tuple(
            FailedItem(code=i.item_code, label=i.label, reason=i.params or i.reason)
            for i in items
            if not i.passed and i.critical
        ),
        labels=labels,
    )


def gaps_by_stage(
    session: Session, order: WorkOrder, visit: Visit, *, max_arrival_distance_m: float
) -> dict[Stage, list[Gap]]:
    """The gaps of every one-visit stage (an empty list: the stage's evidence is complete)."""
    return rules.gaps_by_stage(
        snapshot(session, order, visit), max_arrival_distance_m=max_arrival_distance_m
    )
