"""Request and response bodies of visits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from field_api.messages import DEFAULT_LANGUAGE
from field_api.types import IsoAwareDatetime
from field_api.visits.models import Visit, VisitOutcome
from field_api.visits.rules import gaps_in
from field_api.work_orders.rules import Stage


class VisitCreate(BaseModel):
    """The crew's arrival on site."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    device_time: IsoAwareDatetime | None = None


class VisitDepart(BaseModel):
    """The crew leaving the site."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    device_time: IsoAwareDatetime | None = None


class VisitComplete(BaseModel):
    """A request to finish the one-visit connection (position of the terminal, optional)."""

    model_config = ConfigDict(extra="forbid")

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    device_time: IsoAwareDatetime | None = None


class VisitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int
    crew_id: int
    start_stage: Stage
    arrived_at: datetime
    arrival_lat: float
    arrival_lon: float
    arrival_distance_m: float
    departed_at: datetime | None
    departure_lat: float | None
    departure_lon: float | None
    outcome: VisitOutcome
    completed_at: datetime | None
    stages_done: list[str]
    missing: list[dict[str, Any]] = Field(
        description="The gaps: stage, code, detail (English), message_code, params and "
        "message (the request's language)."
    )

    @classmethod
    def of(cls, visit: Visit, language: str = DEFAULT_LANGUAGE) -> VisitRead:
        read = cls.model_validate(visit)
        read.missing = gaps_in(read.missing, language)
        return read


class CompletionRead(BaseModel):
    """What a completion attempt did: the stages passed now, and what is still missing."""

    complete: bool
    order_stage: Stage
    moved_through: list[Stage]
    stopped_at: Stage | None
    missing: list[dict[str, Any]]
    visit: VisitRead


class TrendRead(BaseModel):
    """One month of the planners' rates (first pass, one visit, end-to-end time limits)."""

    month: str = Field(description="YYYY-MM (China time)")
    checked: int
    passed_first: int
    first_pass_rate: float | None
    energised: int
    one_visit: int
    one_visit_rate: float | None
    finished: int
    met: int
    compliance_rate: float | None


class OneVisitRead(BaseModel):
    code: str
    name: str
    energised: int
    one_visit: int
    rate: float | None
