"""Pure rules of inspection findings and repair orders."""

from __future__ import annotations

import enum


class FindingStatus(enum.StrEnum):
    proposed = "proposed"
    confirmed = "confirmed"
    corrected = "corrected"
    rejected = "rejected"


class RepairStage(enum.StrEnum):
    assigned = "assigned"
    on_site = "on_site"
    repaired = "repaired"
    verified = "verified"
    cancelled = "cancelled"  # its confirmation was undone before a crew started it


class LedgerTaskStatus(enum.StrEnum):
    open = "open"
    accepted = "accepted"
    dismissed = "dismissed"
    resolved = "resolved"  # a later flight saw the asset an "uninspected" task was about


REPAIR_FLOW: tuple[RepairStage, ...] = (
    RepairStage.assigned,
    RepairStage.on_site,
    RepairStage.repaired,
    RepairStage.verified,
)


def review_problem(current: FindingStatus, decision: FindingStatus) -> str | None:
    """A finding is reviewed once: proposed → confirmed | corrected | rejected."""
    if decision == FindingStatus.proposed:
        return "a review decides: confirmed, corrected or rejected"
    if current != FindingStatus.proposed:
        return f"finding already {current.value}"
    return None


def needs_repair(status: FindingStatus, role: str, severity: int, *, threshold: int) -> bool:
    """A confirmed or corrected defect at or above the severity threshold needs a repair order."""
    return (
        status in (FindingStatus.confirmed, FindingStatus.corrected)
        and role == "defect"
        and severity >= threshold
    )


def repair_problem(current: RepairStage, target: RepairStage) -> str | None:
    """Repair orders move one stage at a time: assigned → on_site → repaired → verified."""
    if current not in REPAIR_FLOW:
        return f"repair order is {current.value}; it moves no further"
    index = REPAIR_FLOW.index(current)
    if index + 1 < len(REPAIR_FLOW) and REPAIR_FLOW[index + 1] == target:
        return None
    allowed = REPAIR_FLOW[index + 1].value if index + 1 < len(REPAIR_FLOW) else "none"
    return f"cannot move a repair order from {current.value} to {target.value}; allowed: {allowed}"


def coverage(seen: int, total: int) -> float:
    """Share of ledger assets seen (0 when the line has none)."""
    return seen / total if total else 0.0


def undo_problem(status: FindingStatus, repair_stage: RepairStage | None) -> str | None:
    """A decision is undone until a crew has started the repair order it raised."""
    if status == FindingStatus.proposed:
        return "finding is proposed: there is no decision to undo"
    if repair_stage is not None and repair_stage not in (RepairStage.assigned,):
        return f"its repair order is already {repair_stage.value}: a crew has started it"
    return None
