"""Pure rules of call-backs and of the detectors of off-system processing (体外循环).

Off-system processing means work done or money asked outside the recorded process, or an
application recorded late to hide a delay. Each detector looks at plain facts of one order and
returns flags with a reason a planner can check; none of them decides guilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from field_api import messages
from field_api.common import clock
from field_api.common.calendar import DueDate, WorkingCalendar
from field_api.errors import ValidationFailed

DEFAULT_SETTINGS_PATH = Path(__file__).with_name("settings.yaml")
CHINA_TZ = clock.CHINA_TZ  # the one China time zone (field_api.common.clock)


class Irregularity(StrEnum):
    """What a customer may report at the call-back."""

    asked_to_pay = "asked_to_pay"
    asked_to_apply_offline = "asked_to_apply_offline"
    visited_more_than_once = "visited_more_than_once"
    work_started_before_application = "work_started_before_application"


class FlagKind(StrEnum):
    """Why an order was flagged for review."""

    evidence_before_application = "evidence_before_application"
    late_recorded_application = "late_recorded_application"
    installed_too_soon = "installed_too_soon"
    callback_irregularity = "callback_irregularity"
    callback_unsatisfied = "callback_unsatisfied"


# Follow-ups for the service role: while one of these flags is open the order cannot close.
FOLLOW_UP_KINDS: frozenset[FlagKind] = frozenset(
    {FlagKind.callback_irregularity, FlagKind.callback_unsatisfied}
)


IRREGULARITY_TEXT: dict[Irregularity, str] = {  # English (messages: review_flag.<item>)
    item: messages.render(f"review_flag.{item.value}", {}, "en") for item in Irregularity
}


class DetectorSettings(BaseModel):
    """Thresholds of the detectors (all configurable defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    evidence_before_acceptance_tolerance_minutes: int = Field(default=30, ge=0)
    assumed_camera_utc_offset_hours: int = Field(default=8, ge=-12, le=14)
    late_recording_working_days: int = Field(default=2, ge=0)
    min_minutes_acceptance_to_installation: int = Field(default=60, ge=0)
    unsatisfied_at_most: int = Field(default=2, ge=0, le=5)


class CallbackSettings(BaseModel):
    """The call-back file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    callback_due_working_days: int = Field(default=3, ge=0)
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)


def load_callback_settings(path: Path | None = None) -> CallbackSettings:
    """Read the call-back settings YAML; the bundled defaults when ``path`` is None."""
    target = path or DEFAULT_SETTINGS_PATH
    try:
        raw = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
        return CallbackSettings.model_validate(raw)
    except OSError as exc:
        raise ValidationFailed(
            f"cannot read call-back settings {target}: {exc}",
            code="callback.settings_unreadable",
            params={"path": str(target)},
        ) from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValidationFailed(
            f"call-back settings {target} are invalid: {exc}",
            code="callback.settings_invalid",
            params={"path": str(target)},
        ) from exc


@lru_cache(maxsize=1)
def default_callback_settings() -> CallbackSettings:
    """The bundled settings, parsed once."""
    return load_callback_settings()


def callback_due(calendar: WorkingCalendar, energised_at: datetime, days: int) -> DueDate:
    """The call-back is due ``days`` working days after the day of energisation."""
    return calendar.add_working_days(clock.china_date(energised_at), days)


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence with the time its device says it was captured."""

    label: str
    captured_at: datetime  # naive = camera-local wall time without an offset


@dataclass(frozen=True)
class OrderFacts:
    """What the detectors look at, as plain values."""

    applied_on: date  # the date the customer states they applied
    accepted_at: datetime  # when the application was recorded (server time)
    installed_at: datetime | None = None
    evidence: Sequence[Evidence] = ()
    irregularities: Sequence[Irregularity] = ()
    satisfaction: int | None = None  # 1..5 at the call-back, None before it
    complaint: bool = False


@dataclass(frozen=True)
class Flag:
    """One reason to review an order.

    ``message`` is its stable code and params (:mod:`field_api.messages`), ``reason`` the
    English text of it.
    """

    kind: FlagKind
    reason: str
    message: messages.Message

    @classmethod
    def of(cls, kind: FlagKind, code: str, **params: Any) -> Flag:
        message = messages.Message(code, params)
        return cls(kind, message.english, message)


def _aware(moment: datetime, offset_hours: int) -> datetime:
    if moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone(timedelta(hours=offset_hours)))


def _fmt(moment: datetime) -> str:
    return messages.china_minute(moment)


def detect(calendar: WorkingCalendar, facts: OrderFacts, cfg: DetectorSettings) -> list[Flag]:
    """Every flag the facts of one order raise, in a stable order."""
    flags: list[Flag] = []
    tolerance = timedelta(minutes=cfg.evidence_before_acceptance_tolerance_minutes)
    early = [
        (e, _aware(e.captured_at, cfg.assumed_camera_utc_offset_hours)) for e in facts.evidence
    ]
    early = [(e, at) for e, at in early if at < facts.accepted_at - tolerance]
    if early:
        first_e, first_at = min(early, key=lambda pair: pair[1])
        flags.append(
            Flag.of(
                FlagKind.evidence_before_application,
                "review_flag.evidence_before_application",
                count=len(early),
                accepted=_fmt(facts.accepted_at),
                earliest_label=first_e.label,
                earliest_at=_fmt(first_at),
            )
        )
    accepted_day = clock.china_date(facts.accepted_at)
    if accepted_day > facts.applied_on:
        gap = calendar.working_days_between(facts.applied_on, accepted_day)
        if gap.days > cfg.late_recording_working_days:
            flags.append(
                Flag.of(
                    FlagKind.late_recorded_application,
                    "review_flag.late_recorded_application",
                    applied_on=facts.applied_on.isoformat(),
                    recorded_on=accepted_day.isoformat(),
                    days=gap.days,
                    threshold=cfg.late_recording_working_days,
                )
            )
    if facts.installed_at is not None:
        minutes = (facts.installed_at - facts.accepted_at).total_seconds() / 60
        if minutes < cfg.min_minutes_acceptance_to_installation:
            flags.append(
                Flag.of(
                    FlagKind.installed_too_soon,
                    "review_flag.installed_too_soon",
                    minutes=round(max(minutes, 0)),
                    minimum=cfg.min_minutes_acceptance_to_installation,
                )
            )
    for item in sorted(set(facts.irregularities)):
        flags.append(Flag.of(FlagKind.callback_irregularity, f"review_flag.{item.value}"))
    unsatisfied = (
        facts.satisfaction is not None and facts.satisfaction <= cfg.unsatisfied_at_most
    )
    if unsatisfied or facts.complaint:
        why: list[dict[str, Any]] = []
        if unsatisfied:
            why.append(
                messages.Message(
                    "review_flag.satisfaction_low",
                    {"satisfaction": facts.satisfaction, "at_most": cfg.unsatisfied_at_most},
                ).as_dict()
            )
        if facts.complaint:
            why.append(messages.Message("review_flag.complained").as_dict())
        flags.append(
            Flag.of(FlagKind.callback_unsatisfied, "review_flag.callback_unsatisfied", why=why)
        )
    return flags
