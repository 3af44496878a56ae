"""HTTP endpoints of the LV network: import (admin), transformers near a position."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, UploadFile, status

from field_api.common.actors import Principal, Role
from field_api.deps import CurrentUser, DbSession, require_roles
from field_api.errors import PayloadTooLarge
from field_api.network import service
from field_api.network.schemas import ImportReportRead, TransformerRead
from field_api.paging import Page
from field_api.types import Code64Path

router = APIRouter(prefix="/network", tags=["network"])

Admin = Annotated[Principal, Depends(require_roles(Role.admin))]
MAX_IMPORT_BYTES = 50 * 1024 * 1024


@router.post("/imports", status_code=status.HTTP_201_CREATED)
def import_network(
    file: UploadFile,
    session: DbSession,
    user: Admin,
    file_format: Annotated[Literal["geojson", "csv"] | None, Query(alias="format")] = None,
    dry_run: bool = False,
) -> ImportReportRead:
    """Import transformers and LV lines from GeoJSON or CSV (all rows or none; 422 per row)."""
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(
            f"network files are limited to {MAX_IMPORT_BYTES} bytes",
            code="network.file_too_large",
            params={"limit_bytes": MAX_IMPORT_BYTES},
        )
    report = service.import_file(
        session, data, filename=file.filename or "upload", file_format=file_format, actor=user,
        dry_run=dry_run,
    )
    return report


@router.get("/transformers")
def transformers_near(
    page: Page,
    session: DbSession,
    user: CurrentUser,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    radius_m: Annotated[float, Query(gt=0, le=5000)] = 500,
) -> list[TransformerRead]:
    """Transformers within a radius with spare and available capacity, nearest first."""
    rows = service.nearby_summaries(session, lon, lat, radius_m=radius_m)
    return page.apply([TransformerRead(**r) for r in rows])


@router.get("/transformers/{code}")
def get_transformer(code: Code64Path, session: DbSession, user: CurrentUser) -> TransformerRead:
    """One transformer with its capacity position."""
    transformer = service.get_by_code_or_raise(session, code)
    return TransformerRead(**service.transformer_summary(session, transformer))
