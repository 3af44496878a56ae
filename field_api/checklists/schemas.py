"""Request and response bodies of completion checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from field_api import messages
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
    reason: str | None = Field(description="Why the item failed, in English.")
    params: dict[str, Any] | None = Field(
        description="The reason as a message in no language: {code, params} (field_api.messages)."
    )
    message: str | None = Field(description="Why the item failed, in the request's language.")

    @classmethod
    def of(
        cls,
        row: ChecklistItemResult,
        language: str = messages.DEFAULT_LANGUAGE,
        labels: dict[str, str] | None = None,
    ) -> ItemResultRead:
        why = row.params
        if isinstance(why, dict) and isinstance(why.get("code"), str):
            message: str | None = messages.render(why["code"], why.get("params") or {}, language)
        else:  # passed, or stored before the catalogue
            message = row.reason
        return cls(
            item_code=row.item_code,
            item_type=row.item_type,
            label=(labels or {}).get(row.item_code, row.label),
            critical=row.critical,
            passed=row.passed,
            value=row.value,
            reason=row.reason,
            params=why,
            message=message,
        )


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
    def of(
        cls,
        row: ChecklistSubmission,
        items: list[ChecklistItemResult],
        language: str = messages.DEFAULT_LANGUAGE,
        labels: dict[str, str] | None = None,
    ) -> SubmissionRead:
        """``labels``: the items' names in ``language`` (default: the stored Chinese name)."""
        read = [ItemResultRead.of(i, language, labels) for i in items]
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
