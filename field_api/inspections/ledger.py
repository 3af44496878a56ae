"""The asset ledger as inspections see it: ledger lines, ledger assets and ledger-correction
tasks (uninspected, unregistered, position mismatch).

Owns: reading lines and assets, paging and deciding ledger tasks (accepting one corrects the
ledger, audited), and settling the open "uninspected" tasks of assets a later flight showed.
"""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.errors import InvalidTransition, NotFound, ValidationFailed
from field_api.inspections.models import LedgerAsset, LedgerLine, LedgerTask
from field_api.inspections.rules import LedgerTaskStatus
from field_api.paging import PageParams


def list_lines(session: Session) -> list[LedgerLine]:
    """Every ledger line with its district, by id."""
    return list(session.execute(select(LedgerLine).order_by(LedgerLine.id)).scalars())


def assets_query(line_id: str | None = None) -> Select[LedgerAsset]:
    """The ledger assets (optionally of one line) in id order, for a page to cut."""
    query = select(LedgerAsset).order_by(LedgerAsset.id)
    if line_id is not None:
        query = query.where(LedgerAsset.line_id == line_id)
    return query


def assets_page(
    session: Session, page: PageParams, *, line_id: str | None = None
) -> list[LedgerAsset]:
    """One page of the ledger assets, optionally of one line (counted and cut in the database)."""
    return page.select(session, assets_query(line_id))


def list_ledger_tasks(
    session: Session,
    *,
    line_id: str | None = None,
    status: LedgerTaskStatus | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[LedgerTask], int]:
    """One page of ledger tasks (by line, kind, asset) and how many match in all."""
    query = select(LedgerTask)
    if line_id is not None:
        query = query.where(LedgerTask.line_id == line_id)
    if status is not None:
        query = query.where(LedgerTask.status == status)
    if kind is not None:
        query = query.where(LedgerTask.kind == kind)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    page = (
        query.order_by(LedgerTask.line_id, LedgerTask.kind, LedgerTask.asset_id, LedgerTask.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.execute(page).scalars()), int(total)


def decide_ledger_task(
    session: Session, task_id: str, *, accept: bool, actor: Principal
) -> LedgerTask:
    """Accepting a task corrects the ledger (audited); dismissing leaves it as it is."""
    task = session.get(LedgerTask, task_id)
    if task is None:
        raise NotFound(
            f"ledger task {task_id} not found",
            code="ledger.task_not_found",
            params={"task_id": task_id},
        )
    if task.status != LedgerTaskStatus.open:
        raise InvalidTransition(
            f"ledger task already {task.status.value}",
            code="ledger.task_decided",
            params={"task_id": task_id, "status": task.status.value},
        )
    task.status = LedgerTaskStatus.accepted if accept else LedgerTaskStatus.dismissed
    task.decided_by = actor.user_id
    task.decided_at = clock.now()
    audit.record(session, actor=actor, action=f"ledger_task.{task.status.value}", entity=task)
    if accept:
        _apply_ledger_task(session, task, actor=actor)
    return task


def _apply_ledger_task(session: Session, task: LedgerTask, *, actor: Principal) -> None:
    asset = session.get(LedgerAsset, task.asset_id)
    if task.kind == "unregistered":
        lat = task.observed_lat if task.observed_lat is not None else task.lat
        lon = task.observed_lon if task.observed_lon is not None else task.lon
        if asset is None:
            asset = LedgerAsset(
                id=task.asset_id,
                name=task.asset_id,
                line_id=task.line_id,
                lat=lat,
                lon=lon,
                registered=True,
            )
            session.add(asset)
        else:
            asset.registered, asset.lat, asset.lon = True, lat, lon
    elif asset is None:
        raise NotFound(
            f"ledger asset {task.asset_id} not found",
            code="ledger.asset_not_found",
            params={"asset_id": task.asset_id},
        )
    elif task.kind == "position_mismatch":
        if task.observed_lat is None or task.observed_lon is None:
            raise ValidationFailed(
                "the task has no observed position",
                code="ledger.no_observed_position",
                params={"task_id": task.id},
            )
        asset.lat, asset.lon = task.observed_lat, task.observed_lon
    elif task.kind == "uninspected":
        # Accepted: the asset is not where the ledger says (removed in the field).
        asset.registered = False
    asset.updated_at = clock.now()
    audit.record(session, actor=actor, action=f"ledger_asset.correct_{task.kind}", entity=asset)


def resolve_seen(
    session: Session, seen: list[str], batch_id: str, *, actor: Principal | None
) -> int:
    """Settle the open "uninspected" tasks of the assets a photo of this batch showed.

    Returns how many tasks were settled.
    """
    now = clock.now()
    resolved = 0
    for start in range(0, len(seen), 500):
        tasks = session.execute(
            select(LedgerTask)
            .where(
                LedgerTask.kind == "uninspected",
                LedgerTask.status == LedgerTaskStatus.open,
                LedgerTask.asset_id.in_(seen[start : start + 500]),
            )
            .order_by(LedgerTask.id)
        ).scalars()
        for task in tasks:
            task.status = LedgerTaskStatus.resolved
            task.decided_at = now
            task.detail = (task.detail + f" (seen in batch {batch_id})").strip()
            audit.record(session, actor=actor, action="ledger_task.resolved", entity=task)
            resolved += 1
    return resolved
