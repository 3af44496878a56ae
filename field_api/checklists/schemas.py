"""Request and response bodies of completion checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from field_api.checklists.models import ChecklistItemResult, ChecklistSubmission
from field_api.types import BigInt, Code64, FiniteFloat, IsoAwareDatetime, Text

# A reading: a flag, a number within BIGINT or a double, or a short text (a code, a choice).
Value = bool | BigInt | FiniteFloat | Annotated[Text, Field(max_length=200)] | None


class ChecklistSubmit(BaseModel):
    """The crew's values for the items of one phase (photos and barcodes come from evidence)."""

    model_config = ConfigDict(extra="forbid")

    values: dict[Code64, Value] = Field(max_length=200)
    device_time: IsoAwareDatetime | None = None


class ItemResultRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    item_code: str
    item_type: str
    label: str
    critical: bool
    passed: bool
    value: Value
    reason: str | None


class SubmissionRead(BaseModel):
    id: int
    order_id: int
    phase: str
    attempt: int
    card_code: str
    card_version: int
    status: str
    passed: bool
    submitted_at: datetime
    kit_code: str | None
    failed_items: list[ItemResultRead]
    items: list[ItemResultRead]

    @classmethod
    def of(cls, row: ChecklistSubmission, items: list[ChecklistItemResult]) -> SubmissionRead:
        read = [ItemResultRead.model_validate(i) for i in items]
        return cls(
            id=row.id,
            order_id=row.order_id,
            phase=row.phase,
            attempt=row.attempt,
            card_code=row.card_code,
            card_version=row.card_version,
            status=row.status,
            passed=row.passed,
            submitted_at=row.submitted_at,
            kit_code=row.kit_code,
            failed_items=[i for i in read if not i.passed],
            items=read,
        )


class FirstPassRead(BaseModel):
    code: str
    name: str
    checked: int
    passed_first: int
    rate: float | None


class ParetoRead(BaseModel):
    item_code: str
    label: str
    failures: int
    share: float
    cumulative_share: float
