"""HTTP endpoints of supply reliability: the register, outages, the indices (JSON and CSV)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, UploadFile, status

from field_api.common.csvfiles import csv_response
from field_api.deps import AppSettings, CurrentUser, DbSession
from field_api.errors import PayloadTooLarge
from field_api.paging import Page
from field_api.reliability import outages, register, report
from field_api.reliability.rules import Definition, Variant
from field_api.reliability.schemas import (
    CustomerRead,
    ImportRead,
    IndicesRead,
    MedThresholdRead,
    MedThresholdSet,
    OutageClose,
    OutageCreate,
    OutageImportRead,
    OutageRead,
    RestorationCreate,
    SnapshotCreate,
    SnapshotRead,
)
from field_api.types import CSV_RESPONSES, IdPath

router = APIRouter(prefix="/reliability", tags=["reliability"])

MAX_IMPORT_BYTES = 20 * 1024 * 1024
CUSTOMER_COLUMNS = (
    "account_no", "name_masked", "phone_masked", "supply_point", "supply_kind",
    "transformer_code", "switch_code", "feeder", "district", "area", "connected_on",
    "removed_on",
)
YearQuery = Annotated[int | None, Query(ge=2000, le=2100)]
DistrictQuery = Annotated[str | None, Query(min_length=1, max_length=64)]


def _read(file: UploadFile) -> bytes:
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(
            f"reliability files are limited to {MAX_IMPORT_BYTES} bytes",
            code="reliability.file_too_large",
            params={"limit_bytes": MAX_IMPORT_BYTES},
        )
    return data


@router.post("/sections/imports", status_code=status.HTTP_201_CREATED)
def import_sections(file: UploadFile, session: DbSession, user: CurrentUser) -> ImportRead:
    """Feeder sections as switch → transformer rows (admins; all rows or none, 422 per row)."""
    return register.import_sections(
        session, _read(file), filename=file.filename or "upload", actor=user
    )


@router.post("/customers/imports", status_code=status.HTTP_201_CREATED)
def import_customers(file: UploadFile, session: DbSession, user: CurrentUser) -> ImportRead:
    """The customer register from CSV (admins; all rows or none, 422 listing each bad row)."""
    return register.import_customers(
        session, _read(file), filename=file.filename or "upload", actor=user
    )


@router.get("/customers")
def list_customers(
    page: Page, session: DbSession, user: CurrentUser, district: DistrictQuery = None
) -> list[CustomerRead]:
    """The register, names and phones masked (admins, planners, dispatchers)."""
    return register.customers_page(session, user, page, district=district)


@router.get("/customers.csv", response_class=Response, responses=CSV_RESPONSES)
def customers_csv(
    request: Request, session: DbSession, user: CurrentUser, district: DistrictQuery = None
) -> Response:
    """The register as CSV, names and phones masked."""
    rows = register.all_customers(session, user, district=district)
    return csv_response(request, [r.model_dump() for r in rows], CUSTOMER_COLUMNS,
                        filename="customers")


@router.post("/snapshots", status_code=status.HTTP_201_CREATED)
def snapshot(body: SnapshotCreate, session: DbSession, user: CurrentUser) -> list[SnapshotRead]:
    """Take (or retake) a month's register snapshot: the customers served per district and
    area (admins; the job worker keeps the current month's)."""
    return register.snapshot_month(session, body.month, actor=user)


@router.post("/outages", status_code=status.HTTP_201_CREATED)
def record_outage(body: OutageCreate, session: DbSession, user: CurrentUser) -> OutageRead:
    """Record an outage, open or already ended (dispatchers, admins)."""
    return outages.record_outage(session, body, user)


@router.post("/outages/imports", status_code=status.HTTP_201_CREATED)
def import_outages(file: UploadFile, session: DbSession, user: CurrentUser) -> OutageImportRead:
    """Outages from CSV (dispatchers, admins; all rows or none, 422 listing each bad row)."""
    return outages.import_outages(
        session, _read(file), filename=file.filename or "upload", actor=user
    )


@router.get("/outages")
def list_outages(
    page: Page, session: DbSession, user: CurrentUser, open_only: bool = False
) -> list[OutageRead]:
    """Outages, newest first; ``open_only`` for those without an end yet."""
    return outages.outages_page(session, user, page, open_only=open_only)


@router.get("/outages/{outage_id}")
def get_outage(outage_id: IdPath, session: DbSession, user: CurrentUser) -> OutageRead:
    """One outage with its segments (who got supply back when)."""
    return outages.get_outage(session, outage_id, user)


@router.post("/outages/{outage_id}/restorations")
def restore(
    outage_id: IdPath, body: RestorationCreate, session: DbSession, user: CurrentUser
) -> OutageRead:
    """A restoration step: these transformers' customers have supply again."""
    return outages.restore(session, outage_id, body, user)


@router.post("/outages/{outage_id}/close")
def close(
    outage_id: IdPath, body: OutageClose, session: DbSession, user: CurrentUser
) -> OutageRead:
    """Close an outage: everyone still out got supply back at its end."""
    return outages.close(session, outage_id, body, user)


@router.post("/outages/{outage_id}/approve")
def approve(outage_id: IdPath, session: DbSession, user: CurrentUser) -> OutageRead:
    """A planner approves a closed outage record."""
    return outages.approve(session, outage_id, user)


@router.put("/med-threshold")
def set_med_threshold(
    body: MedThresholdSet, session: DbSession, user: CurrentUser
) -> MedThresholdRead:
    """The major-event-day threshold used under five years of history (planners, admins)."""
    return report.set_med_threshold(session, body, user)


@router.get("/indices")
def indices(
    session: DbSession, settings: AppSettings, user: CurrentUser, year: YearQuery = None,
    definition: Definition = Definition.dlt836, variant: Variant = Variant.all,
) -> IndicesRead:
    """SAIDI, SAIFI, CAIDI, ASAI and short interruptions per month and year to date, for all
    customers, each area and each district's area, against the targets, with the year-end
    projection and its method."""
    return report.indices(session, settings, user, year=year, definition=definition,
                          variant=variant)


@router.get("/indices.csv", response_class=Response, responses=CSV_RESPONSES)
def indices_csv(
    request: Request, session: DbSession, settings: AppSettings, user: CurrentUser,
    year: YearQuery = None, definition: Definition = Definition.dlt836,
    variant: Variant = Variant.all,
) -> Response:
    """The indices as CSV: one row per scope and month, and the year to date."""
    found = report.indices(session, settings, user, year=year, definition=definition,
                           variant=variant)
    name = f"reliability-{found.year}-{found.definition.value}-{found.variant.value}"
    return csv_response(request, report.csv_rows(found), report.CSV_COLUMNS, filename=name)
