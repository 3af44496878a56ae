"""HTTP endpoints of the audit trail: the chain check and its signed checkpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel

from field_api.audit import checkpoints, service
from field_api.common.actors import Principal, Role
from field_api.deps import AppSettings, DbSession, require_roles

router = APIRouter(prefix="/audit", tags=["audit"])

Reader = Annotated[Principal, Depends(require_roles(Role.admin, Role.planner))]
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


class AuditReport(BaseModel):
    ok: bool
    events: int
    checkpoints_checked: int
    problems: list[str]


class CheckpointRead(BaseModel):
    file: str
    record: dict[str, Any]
    signature: str


class CheckpointPage(BaseModel):
    items: list[CheckpointRead]
    total: int
    limit: int
    offset: int


def _read(stored: checkpoints.StoredCheckpoint) -> CheckpointRead:
    return CheckpointRead(
        file=stored.name,
        record=stored.envelope.get("record", {}),
        signature=str(stored.envelope.get("signature", "")),
    )


@router.get("/verify")
def verify_audit(session: DbSession, settings: AppSettings, _: Reader) -> AuditReport:
    """Verify the keyed chain, every audited row and the signed checkpoints."""
    problems = [p.message for p in service.verify(session)]
    report = checkpoints.verify_against(
        session, checkpoints.store_of(settings), checkpoints.public_key(settings)
    )
    problems.extend(report.problems)
    return AuditReport(
        ok=not problems,
        events=service.event_count(session),
        checkpoints_checked=report.checked,
        problems=problems,
    )


@router.get("/checkpoints")
def list_checkpoints(
    settings: AppSettings,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> CheckpointPage:
    """Signed checkpoints of the chain's head, newest first."""
    names, page = checkpoints.page(settings, limit=limit, offset=offset)
    return CheckpointPage(
        items=[_read(s) for s in page], total=len(names), limit=limit, offset=offset
    )


@router.get(
    "/checkpoints/public-key",
    response_class=Response,
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
def checkpoint_public_key(settings: AppSettings) -> Response:
    """The Ed25519 public key that checks the checkpoints' signatures (PEM, public)."""
    return Response(checkpoints.public_key_of(settings), media_type="application/x-pem-file")


@router.post("/checkpoints", status_code=201)
def write_checkpoint(session: DbSession, settings: AppSettings, _: Admin) -> CheckpointRead:
    """Sign the chain's current head and write a checkpoint now."""
    return _read(checkpoints.write_checkpoint(session, settings))
