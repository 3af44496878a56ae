"""Line dispatch: which district and repair crew a ledger line's repairs go to.

Owns the admins' dispatch table (line → district and crew; audited), the district default
(its first crew that handles repairs) and the check that a crew may take repairs.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.auth.models import Crew, District
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.errors import NotFound, ValidationFailed
from field_api.inspections.models import LedgerLine, LineDispatch


def _repair_crew(session: Session, district_id: int | None) -> Crew | None:
    """The district's default repair crew: its first crew that handles repairs."""
    if district_id is None:
        return None
    return (
        session.execute(
            select(Crew)
            .where(Crew.district_id == district_id, Crew.handles_repairs.is_(True))
            .order_by(Crew.id)
        )
        .scalars()
        .first()
    )


def dispatch_for(session: Session, line_id: str | None) -> tuple[int | None, Crew | None]:
    """District and repair crew of a ledger line (GroupIdentifier).

    The admins' dispatch table first (its crew, else its district's default repair crew), then
    the district the ledger gave the line, with that district's default repair crew.
    """
    if not line_id:
        return None, None
    mapping = session.get(LineDispatch, line_id)
    if mapping is not None:
        crew = session.get(Crew, mapping.crew_id) if mapping.crew_id is not None else None
        return mapping.district_id, crew or _repair_crew(session, mapping.district_id)
    line = session.get(LedgerLine, line_id)
    district_id = line.district_id if line else None
    return district_id, _repair_crew(session, district_id)


def list_line_dispatch(
    session: Session, *, limit: int = 100, offset: int = 0
) -> tuple[list[LineDispatch], int]:
    total = session.scalar(select(func.count()).select_from(LineDispatch)) or 0
    rows = session.execute(
        select(LineDispatch).order_by(LineDispatch.line_id).limit(limit).offset(offset)
    ).scalars()
    return list(rows), total


def check_crew_for(session: Session, crew_id: int, district_id: int | None) -> Crew:
    """The crew, when it handles repairs (and works in ``district_id`` when one is named)."""
    crew = session.get(Crew, crew_id)
    if crew is None:
        raise NotFound(
            f"crew {crew_id} not found", code="repair.crew_not_found", params={"crew_id": crew_id}
        )
    if not crew.handles_repairs:
        raise ValidationFailed(
            f"crew {crew.code} does not handle repairs",
            code="repair.crew_not_repair",
            params={"crew": crew.code},
        )
    if district_id is not None and crew.district_id != district_id:
        raise ValidationFailed(
            f"crew {crew.code} works in another district",
            code="repair.crew_other_district",
            params={"crew": crew.code},
        )
    return crew


def put_line_dispatch(
    session: Session,
    line_id: str,
    *,
    district_id: int,
    crew_id: int | None,
    actor: Principal,
) -> LineDispatch:
    """Create or change the district and repair crew of a line (admin; audited)."""
    if session.get(District, district_id) is None:
        raise NotFound(
            f"district {district_id} not found",
            code="repair.district_not_found",
            params={"district_id": district_id},
        )
    if crew_id is not None:
        check_crew_for(session, crew_id, district_id)
    row = session.get(LineDispatch, line_id)
    action = "line_dispatch.update"
    if row is None:
        row = LineDispatch(line_id=line_id)
        session.add(row)
        action = "line_dispatch.create"
    row.district_id = district_id
    row.crew_id = crew_id
    row.updated_at = clock.now()
    row.updated_by = actor.user_id
    audit.record(session, actor=actor, action=action, entity=row)
    return row


def delete_line_dispatch(session: Session, line_id: str, *, actor: Principal) -> None:
    row = session.get(LineDispatch, line_id)
    if row is None:
        raise NotFound(
            f"no dispatch rule for line {line_id}",
            code="repair.dispatch_not_found",
            params={"line_id": line_id},
        )
    session.delete(row)
    audit.record(session, actor=actor, action="line_dispatch.delete", entity=row, deleted=True)
