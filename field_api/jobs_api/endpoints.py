"""Admin endpoints of the job queue: list the dead jobs, put one back in its queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from field_api.common.actors import Principal, Role
from field_api.deps import DbSession, require_roles
from field_api.jobs import service
from field_api.jobs_api.schemas import JobPage, JobRead
from field_api.types import IdPath

router = APIRouter(prefix="/jobs", tags=["jobs"])

Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.get("/dead")
def list_dead_jobs(
    session: DbSession,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JobPage:
    """Jobs that failed their last attempt (the dead-letter list), newest first."""
    rows, total = service.list_dead(session, limit=limit, offset=offset)
    items = [
        JobRead.model_validate(r).model_copy(update={"subject": service.describe(session, r)})
        for r in rows
    ]
    return JobPage(items=items, total=total, limit=limit, offset=offset)


@router.post("/{job_id}/retry")
def retry_job(job_id: IdPath, session: DbSession, _: Admin) -> JobRead:
    """Put a dead job back in its queue, due now, with a fresh count of attempts (a dead text
    message cannot be: its text was wiped; 409 sms.cannot_resend)."""
    return JobRead.model_validate(service.retry(session, job_id))
