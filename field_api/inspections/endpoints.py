"""HTTP endpoints of inspections, repair orders and the planners' backlog views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response

from field_api import paging
from field_api.common.actors import Principal, Role
from field_api.common.csvfiles import csv_response
from field_api.common.downloads import stored_response
from field_api.deps import AppSettings, CurrentUser, DbSession, require_roles
from field_api.errors import NotFound, PayloadTooLarge
from field_api.inspections import (
    dispatch,
    importing,
    ledger,
    repairs,
    reports,
    review,
    storage,
)
from field_api.inspections.models import Finding, RepairOrder
from field_api.inspections.rules import FindingStatus, LedgerTaskStatus, RepairStage
from field_api.inspections.schemas import (
    AssignRequest,
    FindingAssetRequest,
    FindingPage,
    FindingRead,
    ImportRequest,
    ImportResult,
    InspectionPhotoRead,
    LedgerAssetRead,
    LedgerDecision,
    LedgerLineRead,
    LedgerTaskPage,
    LedgerTaskRead,
    LineDispatchPage,
    LineDispatchRead,
    LineDispatchWrite,
    RepairOrderPage,
    RepairOrderRead,
    RepairTransition,
    ReviewRequest,
    ReviewResult,
    UndoRequest,
)
from field_api.paging import Page
from field_api.types import (
    CSV_RESPONSES,
    DB_INT_MAX,
    Code16Path,
    Code64Path,
    IdPath,
    Key100Path,
    OffsetQuery,
    Text100Query,
)

router = APIRouter(tags=["inspections"])
page_router = APIRouter(tags=["pages"], include_in_schema=False)
STATIC = Path(__file__).resolve().parent / "static"
Inspector = Annotated[Principal, Depends(require_roles(Role.inspector, Role.admin))]
Reader = Annotated[Principal, Depends(require_roles(Role.inspector, Role.planner, Role.admin))]
Planner = Annotated[Principal, Depends(require_roles(Role.planner, Role.inspector, Role.admin))]
Dispatcher = Annotated[Principal, Depends(require_roles(Role.planner, Role.admin))]
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]
MAX_REPAIR_PHOTO_BYTES = 20 * 1024 * 1024
PageLimit = Annotated[int, Query(ge=1, le=500)]


PageT = TypeVar("PageT", FindingPage, LineDispatchPage, LedgerTaskPage, RepairOrderPage)


def _page_of(
    page_type: type[PageT], items: Sequence[Any], total: int, *, limit: int, offset: int
) -> PageT:
    """A page body: its items, how many match in all, and where the next page starts."""
    next_offset = paging.next_offset(offset, len(items), total)
    return page_type(
        items=list(items), total=total, limit=limit, offset=offset, next_offset=next_offset
    )


def _decided(finding: Finding, repair: RepairOrder | None) -> ReviewResult:
    """The answer to a review decision: the finding and its repair order, if any."""
    return ReviewResult(
        finding=FindingRead.model_validate(finding),
        repair_order=RepairOrderRead.model_validate(repair) if repair else None,
    )


@router.post("/inspections/batches/import")
def import_batch(
    body: ImportRequest, session: DbSession, settings: AppSettings, user: Inspector
) -> ImportResult:
    """Import a batch's finding records (idempotent; a newer run supersedes an older one)."""
    summary = importing.import_batch(session, Path(body.directory), settings=settings, actor=user)
    return ImportResult(
        batch_id=summary.batch_id,
        unchanged=summary.unchanged,
        created=dict(summary.created),
        updated=dict(summary.updated),
    )


@router.get("/inspections/findings")
def list_findings(
    session: DbSession,
    _: Reader,
    line_id: Text100Query = None,
    asset_id: Text100Query = None,
    class_name: Text100Query = None,
    min_severity: Annotated[int | None, Query(ge=0, le=DB_INT_MAX)] = None,
    status: FindingStatus | None = None,
    include_insulators: Annotated[
        bool, Query(description="Also the insulator boxes (severity 0); defects only otherwise.")
    ] = False,
    limit: PageLimit = 50,
    offset: OffsetQuery = 0,
) -> FindingPage:
    """The review queue: one page of findings, defects first, with the total that match.

    Defects only (severity at least 1) unless ``include_insulators`` or a ``class_name``.
    """
    rows, total = review.list_findings(
        session,
        line_id=line_id,
        asset_id=asset_id,
        class_name=class_name,
        min_severity=min_severity,
        status=status,
        include_insulators=include_insulators,
        limit=limit,
        offset=offset,
    )
    items = [FindingRead.model_validate(r) for r in rows]
    return _page_of(FindingPage, items, total, limit=limit, offset=offset)


@router.get("/inspections/findings/{finding_id}")
def get_finding(finding_id: Code64Path, session: DbSession, _: Reader) -> FindingRead:
    """One finding."""
    return FindingRead.model_validate(review.get_finding_or_raise(session, finding_id))


@router.post("/inspections/findings/{finding_id}/review")
def review_finding(
    finding_id: Code64Path,
    body: ReviewRequest,
    session: DbSession,
    settings: AppSettings,
    user: Inspector,
) -> ReviewResult:
    """Confirm, correct or reject a proposed finding; serious defects get a repair order."""
    finding, repair = review.review(
        session,
        finding_id,
        decision=body.decision,
        actor=user,
        settings=settings,
        class_name=body.class_name,
        severity=body.severity,
        xyxy=body.xyxy,
        note=body.note,
        version=body.version,
        named=body.finding_id,
    )
    return _decided(finding, repair)


@router.post("/inspections/findings/{finding_id}/undo")
def undo_review(
    finding_id: Code64Path, body: UndoRequest, session: DbSession, user: Inspector
) -> ReviewResult:
    """Undo a decision until a crew has started its repair order (cancelled with it); else 409."""
    finding, repair = review.undo_review(
        session, finding_id, actor=user, version=body.version, named=body.finding_id
    )
    return _decided(finding, repair)


@router.put("/inspections/findings/{finding_id}/asset")
def set_finding_asset(
    finding_id: Code64Path, body: FindingAssetRequest, session: DbSession, user: Inspector
) -> ReviewResult:
    """Pick the pole of a finding; its repair order (not yet started) takes pole, line, crew."""
    finding, repair = review.set_finding_asset(
        session, finding_id, body.asset_id, actor=user, version=body.version, named=body.finding_id
    )
    return _decided(finding, repair)


@router.get("/admin/line-dispatch")
def list_line_dispatch(
    session: DbSession, _: Admin, limit: PageLimit = 100, offset: OffsetQuery = 0
) -> LineDispatchPage:
    """Dispatch rules: each ledger line (GroupIdentifier) to its district and repair crew."""
    rows, total = dispatch.list_line_dispatch(session, limit=limit, offset=offset)
    items = [LineDispatchRead.model_validate(r) for r in rows]
    return _page_of(LineDispatchPage, items, total, limit=limit, offset=offset)


@router.put("/admin/line-dispatch/{line_id}")
def put_line_dispatch(
    line_id: Key100Path, body: LineDispatchWrite, session: DbSession, user: Admin
) -> LineDispatchRead:
    """Set the district and repair crew (null: the district's default) of a ledger line."""
    row = dispatch.put_line_dispatch(
        session, line_id, district_id=body.district_id, crew_id=body.crew_id, actor=user
    )
    return LineDispatchRead.model_validate(row)


@router.delete("/admin/line-dispatch/{line_id}", status_code=204)
def delete_line_dispatch(line_id: Key100Path, session: DbSession, user: Admin) -> Response:
    """Remove a line's dispatch rule (its repairs follow the ledger's district again)."""
    dispatch.delete_line_dispatch(session, line_id, actor=user)
    return Response(status_code=204)


def _file(stored: storage.StoredFile) -> Response:
    """A stored image with its real content type (sniffed from its bytes by the service),
    streamed from the media folder or the bucket."""
    headers = {"ETag": f'"{stored.sha256}"', "X-Content-Type-Options": "nosniff"}
    try:
        return stored_response(
            stored.store, stored.sha256, media_type=stored.media_type, headers=headers
        )
    except FileNotFoundError:
        raise NotFound("stored file missing", code="inspection.file_missing") from None


@router.get("/inspections/lines")
def list_lines(page: Page, session: DbSession, _: Reader) -> list[LedgerLineRead]:
    """Ledger lines with their district."""
    return page.apply([LedgerLineRead.model_validate(r) for r in ledger.list_lines(session)])


@router.get("/inspections/photos/{photo_id}")
def get_photo(photo_id: Code64Path, session: DbSession, _: Reader) -> InspectionPhotoRead:
    """An inspection photo's metadata."""
    return InspectionPhotoRead.model_validate(storage.get_photo_or_raise(session, photo_id))


@router.get("/inspections/photos/{photo_id}/image", response_class=FileResponse)
def photo_image(
    photo_id: Code64Path, session: DbSession, settings: AppSettings, _: Reader
) -> Response:
    """The inspection photo's original bytes."""
    return _file(storage.photo_image(session, settings, photo_id))


@router.get("/inspections/photos/{photo_id}/thumbnail", response_class=FileResponse)
def photo_thumbnail(
    photo_id: Code64Path, session: DbSession, settings: AppSettings, _: Reader
) -> Response:
    """The inspection photo's listing thumbnail."""
    return _file(storage.photo_thumbnail(session, settings, photo_id))


@router.get("/inspections/findings/{finding_id}/crop", response_class=FileResponse)
def finding_crop(
    finding_id: Code64Path, session: DbSession, settings: AppSettings, user: CurrentUser
) -> Response:
    """The finding's annotated evidence crop (readable by the assigned repair crew too)."""
    return _file(review.crop_file(session, settings, finding_id, user))


@router.get("/inspections/assets")
def list_assets(
    page: Page, session: DbSession, _: Reader, line_id: Text100Query = None
) -> list[LedgerAssetRead]:
    """Ledger assets, optionally of one line, one page."""
    assets = ledger.assets_page(session, page, line_id=line_id)
    return [LedgerAssetRead.model_validate(a) for a in assets]


@router.get("/inspections/ledger-tasks")
def list_ledger_tasks(
    session: DbSession,
    _: Reader,
    line_id: Text100Query = None,
    status: LedgerTaskStatus | None = None,
    kind: Annotated[
        str | None, Query(pattern="^(uninspected|unregistered|position_mismatch)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> LedgerTaskPage:
    """Ledger-correction tasks per line with their evidence: one page and the total."""
    rows, total = ledger.list_ledger_tasks(
        session, line_id=line_id, status=status, kind=kind, limit=limit, offset=offset
    )
    items = [LedgerTaskRead.model_validate(t) for t in rows]
    return _page_of(LedgerTaskPage, items, total, limit=limit, offset=offset)


@router.post("/inspections/ledger-tasks/{task_id}/decision")
def decide_ledger_task(
    task_id: Code64Path, body: LedgerDecision, session: DbSession, user: Inspector
) -> LedgerTaskRead:
    """Accept (the ledger is corrected) or dismiss a ledger-correction task."""
    task = ledger.decide_ledger_task(session, task_id, accept=body.accept, actor=user)
    return LedgerTaskRead.model_validate(task)


@router.get("/repair-orders")
def list_repair_orders(
    session: DbSession,
    user: CurrentUser,
    stage: RepairStage | None = None,
    limit: PageLimit = 100,
    offset: OffsetQuery = 0,
) -> RepairOrderPage:
    """One page of repair orders (a crew sees its own) with their total."""
    rows, total = repairs.page_repairs(session, user, stage=stage, limit=limit, offset=offset)
    items = [RepairOrderRead.model_validate(r) for r in rows]
    return _page_of(RepairOrderPage, items, total, limit=limit, offset=offset)


@router.get("/repair-orders/unassigned")
def list_unassigned_repairs(
    session: DbSession, _: Planner, limit: PageLimit = 100, offset: OffsetQuery = 0
) -> RepairOrderPage:
    """Open repair orders no crew holds yet, oldest first, with their total."""
    rows, total = repairs.list_unassigned_repairs(session, limit=limit, offset=offset)
    items = [RepairOrderRead.model_validate(r) for r in rows]
    return _page_of(RepairOrderPage, items, total, limit=limit, offset=offset)


@router.post("/repair-orders/{repair_id}/assign")
def assign_repair_order(
    repair_id: IdPath, body: AssignRequest, session: DbSession, user: Dispatcher
) -> RepairOrderRead:
    """Assign or reassign a repair order not yet started to a repair crew (409 without a pole
    or coordinates, or once started)."""
    order = repairs.assign_repair(session, repair_id, body.crew_id, actor=user)
    return RepairOrderRead.model_validate(order)


@router.get("/repair-orders/{repair_id}")
def get_repair_order(repair_id: IdPath, session: DbSession, user: CurrentUser) -> RepairOrderRead:
    """One repair order with its finding, kit and evidence."""
    return RepairOrderRead.model_validate(repairs.get_repair_for_actor(session, repair_id, user))


@router.post("/repair-orders/{repair_id}/photos/{kind}")
async def add_repair_photo(
    repair_id: IdPath,
    kind: Code16Path,
    file: UploadFile,
    session: DbSession,
    settings: AppSettings,
    user: CurrentUser,
) -> RepairOrderRead:
    """Attach the photo taken before or after the repair."""
    data = await file.read(MAX_REPAIR_PHOTO_BYTES + 1)
    if len(data) > MAX_REPAIR_PHOTO_BYTES:
        raise PayloadTooLarge(
            f"a repair photo is at most {MAX_REPAIR_PHOTO_BYTES} bytes",
            code="repair.photo_too_large",
            params={"limit_bytes": MAX_REPAIR_PHOTO_BYTES},
        )
    order = repairs.add_repair_photo(
        session, repair_id, kind=kind, data=data, actor=user, settings=settings
    )
    return RepairOrderRead.model_validate(order)


@router.post("/repair-orders/{repair_id}/transitions")
def move_repair_order(
    repair_id: IdPath, body: RepairTransition, session: DbSession, user: CurrentUser
) -> RepairOrderRead:
    """Move a repair order: assigned → on_site → repaired → verified."""
    order = repairs.move_repair(session, repair_id, body.to, actor=user)
    return RepairOrderRead.model_validate(order)


ReportFormat = Annotated[str, Query(pattern="^(json|csv)$")]


def _report(
    page: Page, request: Request, rows: Sequence[Any], row_type: type[Any], name: str, format: str
) -> list[dict[str, Any]] | Response:
    """A planner's report: one page of JSON, or the whole CSV (the shared writer: China time,
    the reader's language, formula cells neutralised)."""
    if format == "csv":
        return csv_response(request, rows, [f.name for f in fields(row_type)], filename=name)
    return page.apply([asdict(r) for r in rows])


@router.get("/planner/defect-backlog", response_model=None, responses=CSV_RESPONSES)
def defect_backlog(
    page: Page, request: Request, session: DbSession, _: Planner, format: ReportFormat = "json"
) -> list[dict[str, Any]] | Response:
    """Open defects by line, class and severity with their ages (JSON or CSV)."""
    return _report(
        page, request, reports.defect_backlog(session), reports.BacklogRow, "defect-backlog", format
    )


@router.get("/planner/inspection-coverage", response_model=None, responses=CSV_RESPONSES)
def inspection_coverage(
    page: Page,
    request: Request,
    session: DbSession,
    _: Planner,
    days: Annotated[int, Query(ge=1, le=3650)] = 90,
    basis: Annotated[
        str,
        Query(
            pattern="^(flight|import)$",
            description="Date a sighting by the flight (photo capture) or by the import.",
        ),
    ] = "flight",
    format: ReportFormat = "json",
) -> list[dict[str, Any]] | Response:
    """Share of each line's ledger assets seen in the last N days (JSON or CSV).

    An asset is seen by every photo whose ground footprint holds it.
    """
    return _report(
        page,
        request,
        reports.inspection_coverage(session, days=days, basis=basis),
        reports.CoverageRow,
        "inspection-coverage",
        format,
    )


@router.get("/planner/repair-lead-times", response_model=None, responses=CSV_RESPONSES)
def repair_lead_times(
    page: Page, request: Request, session: DbSession, _: Planner, format: ReportFormat = "json"
) -> list[dict[str, Any]] | Response:
    """Days from each repair order to on-site, repaired and verified (JSON or CSV)."""
    return _report(
        page,
        request,
        reports.repair_lead_times(session),
        reports.LeadTimeRow,
        "repair-lead-times",
        format,
    )


@page_router.get("/inspector")
def inspector_page() -> FileResponse:
    """The inspector's review page (it signs in with a bearer token)."""
    return FileResponse(STATIC / "inspector.html", media_type="text/html; charset=utf-8")


@page_router.get("/inspector/inspector.js")
def inspector_script() -> FileResponse:
    """The review page's script."""
    return FileResponse(STATIC / "inspector.js", media_type="text/javascript; charset=utf-8")
