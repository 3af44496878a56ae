"""HTTP endpoints of compensation for service interruptions (planners, admins): the totals per
district and category as JSON, and one billing row per supply point as CSV."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from field_api.common.csvfiles import csv_response
from field_api.deps import AppSettings, CurrentUser, DbSession
from field_api.reliability import compensation
from field_api.reliability.compensation_schemas import CompensationRead
from field_api.types import CSV_RESPONSES, DateQuery

router = APIRouter(prefix="/reliability", tags=["reliability"])

POLICY_RESPONSES: dict[int | str, dict[str, str]] = {
    409: {
        "description": "No compensation policy is set "
        "(``reliability.compensation_policy_missing``) or it is invalid "
        "(``reliability.compensation_policy_invalid``): never a silent zero."
    },
}


@router.get("/compensation", responses=POLICY_RESPONSES)
def compensation_summary(
    session: DbSession,
    settings: AppSettings,
    user: CurrentUser,
    start: DateQuery = None,
    end: DateQuery = None,
) -> CompensationRead:
    """What the supply points interrupted from ``start`` to ``end`` (China dates, both
    included; default: this year to today) are owed under the compensation policy, per
    district and customer category, with the categories the policy has no rule for."""
    return compensation.summary(session, settings, user, start=start, end=end)


@router.get(
    "/compensation.csv", response_class=Response, responses={**CSV_RESPONSES, **POLICY_RESPONSES}
)
def compensation_csv(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    user: CurrentUser,
    start: DateQuery = None,
    end: DateQuery = None,
) -> Response:
    """One billing row per supply point interrupted in the period: supply point, account
    numbers, category, counts and credits in yuan (no names, no phones)."""
    period, rows = compensation.csv_rows(session, settings, user, start=start, end=end)
    name = f"compensation-{period.start.isoformat()}-{period.end.isoformat()}"
    return csv_response(request, rows, compensation.CSV_COLUMNS, filename=name)
