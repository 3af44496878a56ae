"""Reviewing findings: the review queue, an inspector's decision (confirm, correct, reject), its
undo, picking a finding's pole, and the finding versions that refuse a stale decision.

Owns who reads a finding's evidence crop (a crew: only its own repair's) and the repair order a
decision opens, cancels or relocates (through :mod:`field_api.inspections.repairs`).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from field_api.inspections import repairs, rules, storage
from field_api.inspections.models import Finding, LedgerAsset, RepairOrder
from field_api.inspections.rules import FindingStatus, RepairStage

Box = tuple[float, float, float, float]


def get_finding_or_raise(session: Session, finding_id: str) -> Finding:
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise NotFound(
            f"finding {finding_id} not found",
            code="inspection.finding_not_found",
            params={"finding_id": finding_id},
        )
    return finding


def crop_for_actor(session: Session, finding_id: str, actor: Principal) -> Finding:
    """A finding whose evidence crop the actor may see.

    Inspectors, planners and admins see every crop; a crew only the crop of a finding that became
    its own repair order (another crew's is hidden: 404, as if it did not exist); other roles
    (storekeeper, service) read no inspection data at all (403, like the finding itself).
    """
    if actor.role == Role.crew:
        visible = {r.finding_id for r in repairs.list_repairs(session, actor)}
        if finding_id not in visible:
            raise NotFound(
                f"finding {finding_id} not found",
                code="inspection.finding_not_found",
                params={"finding_id": finding_id},
            )
    elif actor.role not in (Role.inspector, Role.planner, Role.admin):
        raise Forbidden(
            f"role {actor.role.value} may not read inspection findings",
            code="auth.role_forbidden",
            params={"role": actor.role.value, "allowed": ["admin", "crew", "inspector", "planner"]},
        )
    return get_finding_or_raise(session, finding_id)


def crop_file(
    session: Session, settings: Settings, finding_id: str, actor: Principal
) -> storage.StoredFile:
    """The finding's annotated evidence crop, for an actor who may see it."""
    finding = crop_for_actor(session, finding_id, actor)
    return storage.stored_file(settings, finding.evidence_sha256)


def list_findings(
    session: Session,
    *,
    line_id: str | None = None,
    asset_id: str | None = None,
    class_name: str | None = None,
    min_severity: int | None = None,
    status: FindingStatus | None = None,
    include_insulators: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Finding], int]:
    """One page of findings, defects first (severity, then id), and how many match in all.

    By default the queue holds defects only (severity at least 1): the insulator boxes that
    locate a pole come on request (``include_insulators``) or when a class is asked for by name.
    """
    query = select(Finding)
    if line_id is not None:
        query = query.where(Finding.line_id == line_id)
    if asset_id is not None:
        query = query.where(Finding.asset_id == asset_id)
    if class_name is not None:
        query = query.where(Finding.class_name == class_name)
    if min_severity is not None:
        query = query.where(Finding.severity >= min_severity)
    if not include_insulators and class_name is None:
        query = query.where(Finding.severity >= 1)
    if status is not None:
        query = query.where(Finding.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = query.order_by(Finding.severity.desc(), Finding.id).limit(limit).offset(offset)
    return list(session.execute(page).scalars()), total


def check_target(finding_id: str, named: str | None) -> None:
    """A decision may name its finding in the body too; naming another one is refused (409)."""
    if named is not None and named != finding_id:
        raise Conflict(
            f"the decision names finding {named} but was sent for {finding_id}",
            code="inspection.finding_mismatch",
            params={"finding_id": finding_id, "named": named},
        )


def _check_version(finding: Finding, shown: int | None) -> None:
    """A decision names the version of the finding it was shown; another one is refused."""
    if shown is not None and shown != finding.version:
        raise Conflict(
            f"finding {finding.id} changed since it was shown (version {shown}, now "
            f"{finding.version}); reload it and decide again",
            code="inspection.finding_stale",
            params={"finding_id": finding.id, "shown": shown, "version": finding.version},
        )


def _apply_correction(
    finding: Finding,
    decision: FindingStatus,
    *,
    class_name: str | None,
    severity: int | None,
    xyxy: Box | None,
) -> None:
    """A correction changes the class, the severity or the box; no other decision does."""
    if decision == FindingStatus.corrected:
        if class_name is None and severity is None and xyxy is None:
            raise ValidationFailed(
                "a correction changes the class, the severity or the box",
                code="inspection.correction_empty",
            )
        if class_name is not None:
            finding.class_name = class_name
        if severity is not None:
            finding.severity = severity
        if xyxy is not None:
            x1, y1, x2, y2 = xyxy
            if not (x1 < x2 and y1 < y2):
                raise ValidationFailed(
                    "box must have x1 < x2 and y1 < y2",
                    code="inspection.box_invalid",
                )
            finding.x1, finding.y1, finding.x2, finding.y2 = xyxy
    elif class_name is not None or severity is not None or xyxy is not None:
        raise ValidationFailed(
            "only a correction changes class, severity or box",
            code="inspection.correction_only",
        )


def review(
    session: Session,
    finding_id: str,
    *,
    decision: FindingStatus,
    actor: Principal,
    settings: Settings,
    class_name: str | None = None,
    severity: int | None = None,
    xyxy: Box | None = None,
    note: str | None = None,
    version: int | None = None,
    named: str | None = None,
) -> tuple[Finding, RepairOrder | None]:
    """Confirm, correct or reject a proposed finding; a serious defect gets a repair order.

    ``version``: the finding's version the inspector was shown; a stale one is refused (409).
    ``named``: the finding the decision's body names, if any; another one is refused (409).
    """
    check_target(finding_id, named)
    finding = get_finding_or_raise(session, finding_id)
    _check_version(finding, version)
    problem = rules.review_problem(finding.status, decision)
    if problem:
        raise InvalidTransition(
            problem,
            code="inspection.review_refused",
            params={"status": finding.status.value, "decision": decision.value},
        )
    _apply_correction(finding, decision, class_name=class_name, severity=severity, xyxy=xyxy)
    finding.status = decision
    finding.reviewed_by = actor.user_id
    finding.reviewed_at = clock.now()
    finding.review_note = note
    finding.version += 1
    audit.record(session, actor=actor, action=f"finding.{decision.value}", entity=finding)
    repair = None
    if rules.needs_repair(
        finding.status,
        finding.role,
        finding.severity,
        threshold=settings.vision.repair_severity_threshold,
    ):
        repair = repairs.create_repair_order(session, finding, actor=actor)
    return finding, repair


def undo_review(
    session: Session,
    finding_id: str,
    *,
    actor: Principal,
    version: int | None = None,
    named: str | None = None,
) -> tuple[Finding, RepairOrder | None]:
    """Undo a decision: the finding is proposed again and its repair order cancelled.

    Allowed until a crew has started the repair order (on site or later: 409).
    """
    check_target(finding_id, named)
    finding = get_finding_or_raise(session, finding_id)
    _check_version(finding, version)
    repair = repairs.repair_of(session, finding_id)
    live = repair if repair is not None and repair.stage != RepairStage.cancelled else None
    problem = rules.undo_problem(finding.status, live.stage if live else None)
    if problem:
        raise Conflict(
            problem,
            code="inspection.undo_refused",
            params={
                "finding_id": finding_id,
                "status": finding.status.value,
                "stage": live.stage.value if live else "-",
            },
        )
    if live is not None:
        live.stage = RepairStage.cancelled
        live.cancelled_at = clock.now()
        audit.record(session, actor=actor, action="repair_order.cancel", entity=live)
    finding.status = FindingStatus.proposed
    finding.reviewed_by = None
    finding.reviewed_at = None
    finding.review_note = None
    finding.version += 1
    audit.record(session, actor=actor, action="finding.undo", entity=finding)
    return finding, live


def set_finding_asset(
    session: Session,
    finding_id: str,
    asset_id: str,
    *,
    actor: Principal,
    version: int | None = None,
    named: str | None = None,
) -> tuple[Finding, RepairOrder | None]:
    """The inspector picks the pole of a finding (one without a position, typically).

    The finding takes the pole and its line; a repair order not yet started follows it (pole,
    line, place, crew). A started one keeps its pole (409).
    """
    check_target(finding_id, named)
    finding = get_finding_or_raise(session, finding_id)
    _check_version(finding, version)
    asset = session.get(LedgerAsset, asset_id)
    if asset is None or not asset.registered:
        raise NotFound(
            f"ledger asset {asset_id} not found",
            code="ledger.asset_not_found",
            params={"asset_id": asset_id},
        )
    repair = repairs.repair_of(session, finding_id)
    if repair is not None and repair.stage not in (RepairStage.assigned, RepairStage.cancelled):
        raise Conflict(
            f"repair order {repair.id} is already {repair.stage.value}; its pole stays",
            code="repair.already_started",
            params={"repair_id": repair.id, "stage": repair.stage.value},
        )
    finding.asset_id = asset.id
    finding.line_id = asset.line_id
    finding.version += 1
    audit.record(session, actor=actor, action="finding.set_asset", entity=finding)
    if repair is not None and repair.stage == RepairStage.assigned:
        keep_crew = repair.crew_id if repair.dispatched_by is not None else None
        repairs.fill_from_finding(session, repair, finding)
        if keep_crew is not None:  # a planner's assignment stands
            repair.crew_id = keep_crew
        audit.record(session, actor=actor, action="repair_order.relocate", entity=repair)
        return finding, repair
    return finding, None
