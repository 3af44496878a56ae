"""Pure time-limit rules: limits as data, clocks per order, their classification.

Limits live in ``time_limits.yaml`` (per category, per stage and end to end, with district
overrides). A clock starts when its ``starts_at`` stage is entered and is due the N-th working
day after, extended by the working days the customer made us wait (pauses) and by the time
the order spent white-listed, which runs its own clock. The end-to-end limit governs: a stage
clock is never due after the end-to-end one, and stage clocks only warn early.

No database or web imports here: callers pass plain dates (China's local dates).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from field_api.common.calendar import DueDate, Interval, WorkingCalendar
from field_api.errors import ValidationFailed
from field_api.messages import Message

DEFAULT_LIMITS_PATH = Path(__file__).with_name("time_limits.yaml")
END_TO_END = "end_to_end"
WHITE_LIST = "white_list"


class TimeLimitsError(ValidationFailed):
    """The time-limits file is missing, malformed or inconsistent."""

    code = "deadline.time_limits_error"


class Category(StrEnum):
    """Connection categories with their own limits."""

    residential = "residential"
    small_micro_enterprise = "small_micro_enterprise"
    other_low_voltage = "other_low_voltage"


class Confidence(StrEnum):
    """How sure we are of a limit (docs/domain.md): confirmed, secondary, unconfirmed."""

    C = "C"
    S = "S"
    U = "U"


class ClockKind(StrEnum):
    """What a clock measures."""

    end_to_end = "end_to_end"
    stage = "stage"
    white_list = "white_list"


class ClockStatus(StrEnum):
    """A clock's standing on a given day."""

    on_track = "on_track"
    at_risk = "at_risk"
    overdue = "overdue"
    met = "met"
    missed = "missed"


OPEN_STATUSES = frozenset({ClockStatus.on_track, ClockStatus.at_risk, ClockStatus.overdue})


class LimitSpec(BaseModel):
    """One time limit: from entering ``starts_at`` to reaching ``ends_at`` in ``days``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    starts_at: str
    ends_at: str
    days: int = Field(ge=0)
    confidence: Confidence
    source: str = ""


class LimitPatch(BaseModel):
    """A district's change to one limit; unset fields keep the category's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int | None = Field(default=None, ge=0)
    confidence: Confidence | None = None
    source: str | None = None

    def apply(self, base: LimitSpec) -> LimitSpec:
        """The base limit with this patch's fields replaced."""
        return base.model_copy(update=self.model_dump(exclude_none=True))


class CategoryLimits(BaseModel):
    """The limits of one category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    end_to_end: LimitSpec
    stages: dict[str, LimitSpec] = Field(default_factory=dict)


class CategoryPatch(BaseModel):
    """A district's changes to one category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    end_to_end: LimitPatch | None = None
    stages: dict[str, LimitPatch] = Field(default_factory=dict)


class WhiteListLimit(BaseModel):
    """The white-list clock when the order was parked without an expected date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int | None = Field(default=None, ge=0)
    confidence: Confidence = Confidence.U


class TimeLimits(BaseModel):
    """The whole time-limits file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at_risk_within_working_days: int = Field(default=1, ge=0)
    pause_reasons: dict[str, str]
    categories: dict[Category, CategoryLimits]
    white_list: WhiteListLimit = Field(default_factory=WhiteListLimit)
    districts: dict[str, dict[Category, CategoryPatch]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> TimeLimits:
        absent = [c.value for c in Category if c not in self.categories]
        if absent:
            raise ValueError(f"categories without limits: {', '.join(absent)}")
        if not self.pause_reasons:
            raise ValueError("at least one pause reason is needed")
        for district, patches in self.districts.items():
            for category, patch in patches.items():
                unknown = set(patch.stages) - set(self.categories[category].stages)
                if unknown:
                    raise ValueError(
                        f"district {district}, {category.value}: unknown stages "
                        f"{', '.join(sorted(unknown))}"
                    )
        return self

    def for_order(self, category: Category | str, district: str | None) -> CategoryLimits:
        """The limits for an order's category, with its district's overrides applied."""
        try:
            cat = Category(category)
        except ValueError as exc:
            raise TimeLimitsError(
                f"no time limits for category {category!r}",
                code="deadline.no_time_limits",
                params={"category": category},
            ) from exc
        base = self.categories[cat]
        patch = self.districts.get(district or "", {}).get(cat)
        if patch is None:
            return base
        end_to_end = (
            patch.end_to_end.apply(base.end_to_end) if patch.end_to_end else base.end_to_end
        )
        stages = {
            name: (patch.stages[name].apply(spec) if name in patch.stages else spec)
            for name, spec in base.stages.items()
        }
        return CategoryLimits(end_to_end=end_to_end, stages=stages)

    def check_pause_reason(self, reason: str) -> None:
        """Raise a clear error for a pause reason not configured."""
        if reason not in self.pause_reasons:
            allowed = ", ".join(sorted(self.pause_reasons))
            raise ValidationFailed(
                f"unknown pause reason {reason!r}; allowed: {allowed}",
                code="deadline.unknown_pause_reason",
                params={"reason": reason, "allowed": sorted(self.pause_reasons)},
            )


def parse_time_limits(raw: object, *, source: str = "time limits") -> TimeLimits:
    """Validate already-parsed YAML into :class:`TimeLimits`."""
    try:
        return TimeLimits.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise TimeLimitsError(
            f"{source} is invalid: {problems}",
            code="deadline.time_limits_invalid",
            params={"source": str(source)},
        ) from exc


def load_time_limits(path: Path | None = None) -> TimeLimits:
    """Read a time-limits YAML; the bundled defaults when ``path`` is None."""
    target = path or DEFAULT_LIMITS_PATH
    try:
        raw = yaml.safe_load(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TimeLimitsError(
            f"cannot read time limits {target}: {exc.strerror}",
            code="deadline.time_limits_unreadable",
            params={"path": str(target)},
        ) from exc
    except yaml.YAMLError as exc:
        raise TimeLimitsError(
            f"time limits {target} is not valid YAML: {exc}",
            code="deadline.time_limits_invalid",
            params={"source": str(target)},
        ) from exc
    return parse_time_limits(raw, source=str(target))


@lru_cache(maxsize=1)
def default_time_limits() -> TimeLimits:
    """The bundled limits, parsed once."""
    return load_time_limits()


@dataclass(frozen=True)
class Pause:
    """A customer-caused wait; ``end`` None while the clock is still stopped."""

    start: date
    end: date | None
    reason: str


@dataclass(frozen=True)
class WhiteListPeriod:
    """Time parked for grid reinforcement; ``expected_on`` is the date promised when parked."""

    start: date
    end: date | None
    expected_on: date | None = None


@dataclass(frozen=True)
class Clock:
    """One time limit of one order, evaluated on ``as_of``."""

    name: str
    kind: ClockKind
    started_on: date
    limit_days: int | None
    due: DueDate | None
    finished_on: date | None
    status: ClockStatus | None
    governing: bool
    capped_by_end_to_end: bool = False
    paused: bool = False
    paused_working_days: int = 0
    confidence: Confidence | None = None


@dataclass(frozen=True)
class OrderDeadlines:
    """All clocks of an order; the end-to-end one governs."""

    clocks: tuple[Clock, ...]
    as_of: date
    notices: tuple[Message, ...] = field(default=())  # the warnings, in no language

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings in English."""
        return tuple(n.english for n in self.notices)

    @property
    def end_to_end(self) -> Clock | None:
        """The governing clock, None before the order was accepted."""
        return next((c for c in self.clocks if c.kind is ClockKind.end_to_end), None)

    @property
    def provisional(self) -> bool:
        """Whether any due date was counted on weekends alone."""
        return any(c.due is not None and c.due.provisional for c in self.clocks)

    @property
    def missing_years(self) -> tuple[int, ...]:
        """Years without a holiday schedule that any due date depends on."""
        years = {y for c in self.clocks if c.due is not None for y in c.due.missing_years}
        return tuple(sorted(years))


def _closed(intervals: Iterable[tuple[date, date | None]], as_of: date) -> list[Interval]:
    # An open pause has lasted at least until today; the due date moves on while it lasts.
    return [
        Interval(start, end if end is not None else max(start, as_of)) for start, end in intervals
    ]


def classify(
    calendar: WorkingCalendar,
    *,
    due: date,
    finished_on: date | None,
    as_of: date,
    at_risk_within: int = 1,
) -> ClockStatus:
    """met / missed once finished; otherwise overdue, at_risk (due within N working days) or
    on_track."""
    if finished_on is not None:
        return ClockStatus.met if finished_on <= due else ClockStatus.missed
    if as_of > due:
        return ClockStatus.overdue
    left = calendar.working_days_between(as_of, due).days
    return ClockStatus.at_risk if left <= at_risk_within else ClockStatus.on_track


def _clock(
    calendar: WorkingCalendar,
    *,
    name: str,
    kind: ClockKind,
    spec: LimitSpec,
    started_on: date,
    finished_on: date | None,
    stops: Sequence[Interval],
    open_pause: bool,
    as_of: date,
    at_risk_within: int,
    cap: DueDate | None,
) -> Clock:
    due = calendar.add_working_days(started_on, spec.days, pauses=stops)
    capped = False
    if cap is not None and cap.due < due.due:
        due, capped = cap, True
    end = finished_on or as_of
    paused_days = sum(
        calendar.working_days_between(max(s.start, started_on), min(s.end, end)).days
        for s in stops
        if s.end > started_on and s.start < end
    )
    return Clock(
        name=name,
        kind=kind,
        started_on=started_on,
        limit_days=spec.days,
        due=due,
        finished_on=finished_on,
        status=classify(
            calendar,
            due=due.due,
            finished_on=finished_on,
            as_of=as_of,
            at_risk_within=at_risk_within,
        ),
        governing=kind is ClockKind.end_to_end,
        capped_by_end_to_end=capped,
        paused=open_pause and finished_on is None,
        paused_working_days=paused_days,
        confidence=spec.confidence,
    )


def _merge(intervals: Sequence[Interval]) -> list[Interval]:
    # Overlapping waits (a customer pause during a white-list period) must not count twice.
    merged: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: i.start):
        if merged and iv.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, iv.end))
        else:
            merged.append(iv)
    return merged


def _first_on_or_after(entered: Mapping[str, date], stage: str, start: date) -> date | None:
    day = entered.get(stage)
    return day if day is not None and day >= start else None


def evaluate_order(
    calendar: WorkingCalendar,
    limits: CategoryLimits,
    *,
    entered: Mapping[str, date],
    pauses: Sequence[Pause] = (),
    white_list: Sequence[WhiteListPeriod] = (),
    white_list_days: int | None = None,
    as_of: date,
    at_risk_within: int = 1,
) -> OrderDeadlines:
    """Every clock of an order as of ``as_of``.

    Args:
        entered: stage name → the local date the order first entered it; a clock exists
            only once its start stage was entered.
        pauses: customer-caused waits (each extends the clocks by its working days).
        white_list: periods parked for grid reinforcement; they stop the normal clocks and
            run a clock of their own, due on ``expected_on`` or after ``white_list_days``.
        as_of: the day to classify on (never "today" implicitly, so tests use fixed dates).
    """
    open_pause = any(p.end is None for p in pauses) or any(w.end is None for w in white_list)
    stops = _merge(
        _closed([(p.start, p.end) for p in pauses] + [(w.start, w.end) for w in white_list], as_of)
    )
    clocks: list[Clock] = []
    e2e_start = entered.get(limits.end_to_end.starts_at)
    e2e: Clock | None = None
    if e2e_start is not None:
        e2e = _clock(
            calendar,
            name=END_TO_END,
            kind=ClockKind.end_to_end,
            spec=limits.end_to_end,
            started_on=e2e_start,
            finished_on=_first_on_or_after(entered, limits.end_to_end.ends_at, e2e_start),
            stops=stops,
            open_pause=open_pause,
            as_of=as_of,
            at_risk_within=at_risk_within,
            cap=None,
        )
        clocks.append(e2e)
    for name, spec in limits.stages.items():
        start = entered.get(spec.starts_at)
        if start is None:
            continue
        clocks.append(
            _clock(
                calendar,
                name=name,
                kind=ClockKind.stage,
                spec=spec,
                started_on=start,
                finished_on=_first_on_or_after(entered, spec.ends_at, start),
                stops=stops,
                open_pause=open_pause,
                as_of=as_of,
                at_risk_within=at_risk_within,
                cap=e2e.due if e2e is not None else None,
            )
        )
    for period in white_list:
        clocks.append(_white_list_clock(calendar, period, white_list_days, as_of, at_risk_within))
    return OrderDeadlines(tuple(clocks), as_of, _warnings(clocks, e2e))


def _white_list_clock(
    calendar: WorkingCalendar,
    period: WhiteListPeriod,
    days: int | None,
    as_of: date,
    at_risk_within: int,
) -> Clock:
    due: DueDate | None
    if period.expected_on is not None:
        due = DueDate(period.expected_on, False, ())
    elif days is not None:
        due = calendar.add_working_days(period.start, days)
    else:
        due = None
    status = (
        classify(
            calendar,
            due=due.due,
            finished_on=period.end,
            as_of=as_of,
            at_risk_within=at_risk_within,
        )
        if due is not None
        else None
    )
    return Clock(
        name=WHITE_LIST,
        kind=ClockKind.white_list,
        started_on=period.start,
        limit_days=days if period.expected_on is None else None,
        due=due,
        finished_on=period.end,
        status=status,
        governing=False,
    )


def _warnings(clocks: Sequence[Clock], e2e: Clock | None) -> tuple[Message, ...]:
    # Stage limits warn early: they matter while the governing clock is still running.
    if e2e is None or e2e.status not in OPEN_STATUSES:
        return ()
    out: list[Message] = []
    for c in clocks:
        if c.kind is not ClockKind.stage or c.due is None:
            continue
        when = {"clock": c.name, "due_on": c.due.due.isoformat()}
        if c.status in (ClockStatus.overdue, ClockStatus.missed):
            out.append(Message("deadline.stage_passed", when))
        elif c.status is ClockStatus.at_risk:
            out.append(Message("deadline.stage_due", when))
    return tuple(out)


@dataclass(frozen=True)
class Compliance:
    """Finished clocks of one name over a period: how many met their limit."""

    name: str
    met: int
    missed: int

    @property
    def finished(self) -> int:
        """Clocks that stopped (met or missed)."""
        return self.met + self.missed

    @property
    def rate(self) -> float | None:
        """Share met, None when nothing finished."""
        return self.met / self.finished if self.finished else None


def summarise_compliance(clocks: Iterable[Clock]) -> list[Compliance]:
    """Compliance per clock name (end to end first, then stages in name order)."""
    counts: dict[str, list[int]] = {}
    for c in clocks:
        if c.status is ClockStatus.met:
            counts.setdefault(c.name, [0, 0])[0] += 1
        elif c.status is ClockStatus.missed:
            counts.setdefault(c.name, [0, 0])[1] += 1
    names = sorted(counts, key=lambda n: (n != END_TO_END, n))
    return [Compliance(n, counts[n][0], counts[n][1]) for n in names]
