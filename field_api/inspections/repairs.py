"""Repair orders: created from a reviewed serious defect, dispatched to a repair crew, moved
assigned → on_site → repaired → verified with before/after photos.

Owns: creating, reopening and relocating an order from its finding, who sees and moves which
order (a crew: its own), the unassigned queue, planners' assignment and the bulk dispatch.
"""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.storage import store_of
from field_api.config import Settings
from field_api.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from field_api.inspections import rules
from field_api.inspections.dispatch import check_crew_for, dispatch_for
from field_api.inspections.models import Finding, LedgerAsset, RepairOrder
from field_api.inspections.rules import RepairStage

# --- an order from its finding -------------------------------------------------------------------


def _locate(session: Session, finding: Finding) -> tuple[float | None, float | None]:
    if finding.ground_lat is not None and finding.ground_lon is not None:
        return finding.ground_lat, finding.ground_lon
    asset = session.get(LedgerAsset, finding.asset_id) if finding.asset_id else None
    return (asset.lat, asset.lon) if asset else (None, None)


def is_located(order: RepairOrder) -> bool:
    """An order knows where to go: a pole, or coordinates."""
    return order.asset_id is not None or (order.lat is not None and order.lon is not None)


def fill_from_finding(session: Session, order: RepairOrder, finding: Finding) -> None:
    """Pole, line, place, district and (when located) crew of the order, from its finding."""
    asset = session.get(LedgerAsset, finding.asset_id) if finding.asset_id else None
    order.asset_id = finding.asset_id
    order.line_id = finding.line_id or (asset.line_id if asset else None)
    order.lat, order.lon = _locate(session, finding)
    district_id, crew = dispatch_for(session, order.line_id)
    order.district_id = district_id
    # a repair order without a pole or coordinates waits in the unassigned queue
    order.crew_id = crew.id if crew is not None and is_located(order) else None
    order.dispatched_at = clock.now() if order.crew_id is not None else None
    order.dispatched_by = None


def repair_of(session: Session, finding_id: str) -> RepairOrder | None:
    """The repair order of a finding (live or cancelled), if it ever had one."""
    return session.execute(
        select(RepairOrder).where(RepairOrder.finding_id == finding_id)
    ).scalar_one_or_none()


def create_repair_order(session: Session, finding: Finding, *, actor: Principal) -> RepairOrder:
    """The finding's repair order: a new one, or its cancelled one reopened (audited)."""
    from standard_kits import load_catalogue

    kit = load_catalogue().repair_kit_for(finding.class_name)
    order = repair_of(session, finding.id)
    action = "repair_order.create"
    if order is None:
        order = RepairOrder(finding_id=finding.id)
        session.add(order)
    else:  # confirmed again after an undo: the cancelled order is reopened
        action = "repair_order.reopen"
        order.cancelled_at = None
    order.repair_kit_code = kit.code if kit else None
    order.evidence_sha256 = finding.evidence_sha256
    order.stage = RepairStage.assigned
    order.created_at = clock.now()
    fill_from_finding(session, order, finding)
    audit.record(session, actor=actor, action=action, entity=order)
    return order


# --- who sees which order ------------------------------------------------------------------------


def get_repair_for_actor(session: Session, repair_id: int, actor: Principal) -> RepairOrder:
    order = session.get(RepairOrder, repair_id)
    if order is None:
        raise NotFound(
            f"repair order {repair_id} not found",
            code="repair.not_found",
            params={"repair_id": repair_id},
        )
    if actor.role == Role.crew and actor.crew_id != order.crew_id:
        raise Forbidden(
            f"repair order {repair_id} belongs to another crew",
            code="repair.other_crew",
            params={"repair_id": repair_id},
        )
    return order


def _repairs_query(actor: Principal, stage: RepairStage | None) -> Select[RepairOrder]:
    query = select(RepairOrder)
    if actor.role == Role.crew:
        query = query.where(
            RepairOrder.crew_id == actor.crew_id, RepairOrder.stage != RepairStage.cancelled
        )
    if stage is not None:
        query = query.where(RepairOrder.stage == stage)
    return query


def list_repairs(session: Session, actor: Principal) -> list[RepairOrder]:
    """Every repair order the actor sees (a crew: its own, cancelled ones left out)."""
    query = _repairs_query(actor, None).order_by(RepairOrder.id)
    return list(session.execute(query).scalars())


def page_repairs(
    session: Session,
    actor: Principal,
    *,
    stage: RepairStage | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[RepairOrder], int]:
    """One page of the repair orders the actor sees, and how many there are in all."""
    query = _repairs_query(actor, stage)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(RepairOrder.id).limit(limit).offset(offset)).scalars()
    return list(rows), total


# --- the crew's work -----------------------------------------------------------------------------


def add_repair_photo(
    session: Session,
    repair_id: int,
    *,
    kind: str,
    data: bytes,
    actor: Principal,
    settings: Settings,
) -> RepairOrder:
    """Attach the before or after photo (JPEG or PNG, checked by its magic bytes).

    Only the repair crew the order is assigned to (or an admin) photographs its repair.
    """
    order = get_repair_for_actor(session, repair_id, actor)
    if actor.role not in (Role.crew, Role.admin):
        raise Forbidden(
            "the repair crew photographs its own repair",
            code="repair.progress_forbidden",
            params={"role": actor.role.value},
        )
    if kind not in ("before", "after"):
        raise ValidationFailed(
            "kind must be before or after",
            code="repair.photo_kind_invalid",
            params={"allowed": ["before", "after"]},
        )
    if order.stage in (RepairStage.verified, RepairStage.cancelled):
        raise Conflict(
            f"repair order {repair_id} is {order.stage.value}: its photos are kept as they are",
            code="repair.photos_locked",
            params={"repair_id": repair_id, "stage": order.stage.value},
        )
    if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
        raise ValidationFailed("a repair photo must be a JPEG or PNG", code="repair.photo_type")
    sha = store_of(settings).put_bytes(data).sha256
    if kind == "before":
        order.before_photo_sha256 = sha
    else:
        order.after_photo_sha256 = sha
    audit.record(session, actor=actor, action=f"repair_order.photo_{kind}", entity=order)
    return order


def _check_mover(actor: Principal, target: RepairStage) -> None:
    """Who may move an order to ``target``: decided before the stage rules are asked."""
    if actor.role not in (Role.crew, Role.inspector, Role.admin):
        raise Forbidden(
            f"role {actor.role.value} does not move repair orders",
            code="auth.role_forbidden",
            params={"role": actor.role.value, "allowed": ["admin", "crew", "inspector"]},
        )
    if target == RepairStage.verified and actor.role not in (Role.inspector, Role.admin):
        raise Forbidden(
            "an inspector verifies a repair",
            code="repair.verify_forbidden",
            params={"role": actor.role.value},
        )
    if target in (RepairStage.on_site, RepairStage.repaired) and actor.role not in (
        Role.crew,
        Role.admin,
    ):
        raise Forbidden(
            "the repair crew reports its own progress",
            code="repair.progress_forbidden",
            params={"role": actor.role.value},
        )


def move_repair(
    session: Session, repair_id: int, target: RepairStage, *, actor: Principal
) -> RepairOrder:
    order = get_repair_for_actor(session, repair_id, actor)
    # who may move it is decided first: a role that may not never learns the stage rules' answer
    _check_mover(actor, target)
    problem = rules.repair_problem(order.stage, target)
    if problem:
        raise InvalidTransition(
            problem,
            code="repair.transition_refused",
            params={"repair_id": repair_id, "stage": order.stage.value, "target": target.value},
        )
    if target == RepairStage.repaired:
        missing = [
            k
            for k, v in (("before", order.before_photo_sha256), ("after", order.after_photo_sha256))
            if v is None
        ]
        if missing:
            raise ValidationFailed(
                f"photo evidence missing: {', '.join(missing)}",
                code="repair.photo_missing",
                params={"missing": missing},
            )
    now = clock.now()
    order.stage = target
    if target == RepairStage.on_site:
        order.on_site_at = now
    elif target == RepairStage.repaired:
        order.repaired_at = now
    elif target == RepairStage.verified:
        order.verified_at = now
    audit.record(session, actor=actor, action=f"repair_order.to_{target.value}", entity=order)
    return order


# --- the unassigned queue ------------------------------------------------------------------------


def list_unassigned_repairs(
    session: Session, *, limit: int = 100, offset: int = 0
) -> tuple[list[RepairOrder], int]:
    """Open repair orders that no crew holds (oldest first)."""
    query = select(RepairOrder).where(
        RepairOrder.crew_id.is_(None), RepairOrder.stage == RepairStage.assigned
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(RepairOrder.id).limit(limit).offset(offset)).scalars()
    return list(rows), total


def assign_repair(
    session: Session, repair_id: int, crew_id: int, *, actor: Principal
) -> RepairOrder:
    """Assign or reassign a repair order not yet started to a repair crew (planner, admin)."""
    order = get_repair_for_actor(session, repair_id, actor)
    if order.stage != RepairStage.assigned:
        raise Conflict(
            f"repair order {repair_id} is {order.stage.value}: only an order not yet started "
            "changes crew",
            code="repair.already_started",
            params={"repair_id": repair_id, "stage": order.stage.value},
        )
    if not is_located(order):
        raise Conflict(
            f"repair order {repair_id} has no pole and no coordinates: pick its pole first",
            code="repair.not_located",
            params={"repair_id": repair_id},
        )
    crew = check_crew_for(session, crew_id, None)
    order.crew_id = crew.id
    if order.district_id is None:
        order.district_id = crew.district_id
    order.dispatched_at = clock.now()
    order.dispatched_by = actor.user_id
    audit.record(session, actor=actor, action="repair_order.assign", entity=order)
    return order


def dispatch_unassigned(session: Session, *, actor: Principal | None) -> dict[str, int]:
    """Give every open unassigned repair order the crew its line maps to (idempotent)."""
    counts = {"assigned": 0, "still_unassigned": 0, "not_located": 0}
    for order in session.execute(
        select(RepairOrder)
        .where(RepairOrder.crew_id.is_(None), RepairOrder.stage == RepairStage.assigned)
        .order_by(RepairOrder.id)
    ).scalars():
        finding = session.get(Finding, order.finding_id)
        line_id = order.line_id or (finding.line_id if finding else None)
        if line_id is None and order.asset_id:
            asset = session.get(LedgerAsset, order.asset_id)
            line_id = asset.line_id if asset else None
        if not is_located(order):
            counts["not_located"] += 1
            continue
        district_id, crew = dispatch_for(session, line_id)
        if crew is None:
            counts["still_unassigned"] += 1
            continue
        order.line_id = line_id
        order.district_id = district_id
        order.crew_id = crew.id
        order.dispatched_at = clock.now()
        audit.record(session, actor=actor, action="repair_order.dispatch", entity=order)
        counts["assigned"] += 1
    session.flush()
    return counts
