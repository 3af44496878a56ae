"""The planners' three inspection reports: the open defect backlog with its ages, inspection
coverage per line (by flight or by import date) and the repair orders' lead times.

Each report is a list of frozen rows (one dataclass per report) that the endpoints answer as
JSON or CSV.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.common import clock
from field_api.errors import ValidationFailed
from field_api.inspections import rules
from field_api.inspections.models import Finding, LedgerAsset, RepairOrder
from field_api.inspections.rules import FindingStatus, RepairStage


@dataclass(frozen=True)
class BacklogRow:
    line_id: str | None
    class_name: str
    severity: int
    open_findings: int
    oldest_age_days: float
    mean_age_days: float


def defect_backlog(session: Session, *, now: datetime | None = None) -> list[BacklogRow]:
    """Open defects (proposed, confirmed or corrected without a verified repair), with ages."""
    now = now or clock.now()
    verified = {
        fid
        for (fid,) in session.execute(
            select(RepairOrder.finding_id).where(RepairOrder.stage == RepairStage.verified)
        )
    }
    groups: dict[tuple[str | None, str, int], list[float]] = defaultdict(list)
    for f in session.execute(
        select(Finding).where(Finding.role == "defect", Finding.status != FindingStatus.rejected)
    ).scalars():
        if f.id in verified:
            continue
        age = (now - f.created_at).total_seconds() / 86400
        groups[(f.line_id, f.class_name, f.severity)].append(age)
    return [
        BacklogRow(line, cls, sev, len(ages), round(max(ages), 2), round(sum(ages) / len(ages), 2))
        for (line, cls, sev), ages in sorted(
            groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], -kv[0][2])
        )
    ]


@dataclass(frozen=True)
class CoverageRow:
    line_id: str
    assets: int
    seen: int
    coverage: float


#: How coverage dates a sighting: the photo's capture (flight) time or the batch's import time.
COVERAGE_BASES = ("flight", "import")


def inspection_coverage(
    session: Session, *, days: int, basis: str = "flight", now: datetime | None = None
) -> list[CoverageRow]:
    """Share of each line's registered assets seen in a photo in the last ``days`` days.

    An asset is seen by every photo whose ground footprint holds it; ``basis`` dates the
    sighting by the flight (photo capture time) or by the import of its batch.
    """
    if basis not in COVERAGE_BASES:
        raise ValidationFailed(
            f"coverage basis {basis!r} is not one of {', '.join(COVERAGE_BASES)}",
            code="validation_failed",
        )
    since = (now or clock.now()) - timedelta(days=days)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for asset in session.execute(
        select(LedgerAsset).where(LedgerAsset.registered.is_(True))
    ).scalars():
        key = asset.line_id or "-"
        counts[key][0] += 1
        seen = asset.last_seen_at if basis == "flight" else asset.last_seen_imported_at
        if seen is not None and seen >= since:
            counts[key][1] += 1
    return [
        CoverageRow(line, total, seen, round(rules.coverage(seen, total), 4))
        for line, (total, seen) in sorted(counts.items())
    ]


@dataclass(frozen=True)
class LeadTimeRow:
    repair_id: int
    finding_id: str
    stage: str
    days_to_on_site: float | None
    days_to_repaired: float | None
    days_to_verified: float | None


def repair_lead_times(session: Session) -> list[LeadTimeRow]:
    def days(start: datetime, end: datetime | None) -> float | None:
        return None if end is None else round((end - start).total_seconds() / 86400, 3)

    return [
        LeadTimeRow(
            o.id,
            o.finding_id,
            o.stage.value,
            days(o.created_at, o.on_site_at),
            days(o.created_at, o.repaired_at),
            days(o.created_at, o.verified_at),
        )
        for o in session.execute(select(RepairOrder).order_by(RepairOrder.id)).scalars()
    ]
