"""HTTP endpoint of the audit chain check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from field_api.audit import service
from field_api.auth.models import Role
from field_api.auth.rules import Principal
from field_api.deps import DbSession, require_roles

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditReport(BaseModel):
    ok: bool
    events: int
    problems: list[str]


@router.get("/verify")
def verify_audit(
    session: DbSession, _: Annotated[Principal, Depends(require_roles(Role.admin, Role.planner))]
) -> AuditReport:
    """Verify the audit hash chain and the audited rows."""
    problems = service.verify(session)
    return AuditReport(
        ok=not problems, events=service.event_count(session), problems=[p.message for p in problems]
    )
