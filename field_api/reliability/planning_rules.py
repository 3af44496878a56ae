"""The planned-outage customer-hours budget, merge proposals and notice timing, pure.

- **Budget proposal**: a district's yearly SAIDI allowance in customer-hours is the target
  (urban 2.38 h, rural 8.52 h by default) times the customers it serves in each area; the
  share left to planned outages is what last year's faults did not use: ``1 - fault share``,
  the fault share being the share of last year's customer-hours (of the district's recorded
  outages) that were not planned maintenance. Without last year's outages the fault share is
  :data:`DEFAULT_FAULT_SHARE` (half), and the method says so.
- **Cost**: a planned outage costs its customers times its hours.
- **Merging** ("one outage, many uses"): requests on the same feeder section (switch) whose
  windows start within ``window_days`` of the earliest one are done in one outage, their works
  side by side: the merged outage lasts as long as the longest work, from the earliest start.
  Separately they cost ``customers x sum(hours)``; merged ``customers x max(hours)``; the
  difference is saved.
- **Notices**: due ``days_before`` days before the start, or now when that is past.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from field_api.reliability.rules import Area, Cause, Interruption

DEFAULT_FAULT_SHARE = 0.5


class BudgetMethod(enum.StrEnum):
    last_year = "targets_x_customers_x_(1-last_year_fault_share)"
    default_share = "targets_x_customers_x_(1-default_fault_share_0.5)_no_last_year"


class RequestState(enum.StrEnum):
    requested = "requested"  # waiting for a planner
    approved = "approved"  # counts against the budget; notices scheduled
    merged = "merged"  # done within another request's outage (its work kept there)
    cancelled = "cancelled"


class NoticeKind(enum.StrEnum):
    notice = "notice"  # the first notice, due days before the start
    moved = "moved"  # a correction: the window moved
    cancelled = "cancelled"  # a correction: the outage is cancelled


class NoticeState(enum.StrEnum):
    pending = "pending"
    sent = "sent"  # handed to the SMS outbox (sent once from there)
    superseded = "superseded"  # the window moved or the outage was cancelled before it went


@dataclass(frozen=True, slots=True)
class Proposal:
    customer_hours: float
    method: BudgetMethod
    fault_share: float
    allowance_h: float  # targets x customers (all causes)


def fault_share(interruptions: Sequence[Interruption]) -> float | None:
    """The share of customer-hours that were not planned maintenance (None: none at all)."""
    total = 0.0
    faults = 0.0
    for item in interruptions:
        hours = item.customers * item.minutes / 60.0
        total += hours
        if item.cause is not Cause.planned_maintenance:
            faults += hours
    return None if total <= 0 else faults / total


def propose_budget(
    customers: Mapping[Area, int], *, urban_h: float, rural_h: float, last_fault_share: float | None
) -> Proposal:
    """The yearly planned-outage customer-hours of a district (see the module's text)."""
    allowance = sum(
        count * (urban_h if area is Area.urban else rural_h) for area, count in customers.items()
    )
    if last_fault_share is None:
        share, method = DEFAULT_FAULT_SHARE, BudgetMethod.default_share
    else:
        share, method = min(max(last_fault_share, 0.0), 1.0), BudgetMethod.last_year
    return Proposal(round(allowance * (1.0 - share), 4), method, share, allowance)


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600.0


def cost(customers: int, hours: float) -> float:
    """Customer-hours of an outage of ``customers`` for ``hours``."""
    return round(customers * hours, 4)


@dataclass(frozen=True, slots=True)
class Window:
    """One request as merging sees it."""

    request_id: int
    section: str
    start: datetime
    end: datetime
    customers: int

    @property
    def hours(self) -> float:
        return hours_between(self.start, self.end)


@dataclass(frozen=True, slots=True)
class MergeProposal:
    section: str
    request_ids: tuple[int, ...]  # the first is the host (earliest start)
    customers: int
    separate_customer_hours: float
    merged_customer_hours: float
    start: datetime
    end: datetime

    @property
    def saved_customer_hours(self) -> float:
        return round(self.separate_customer_hours - self.merged_customer_hours, 4)


def merged_of(windows: Sequence[Window]) -> MergeProposal:
    """The one outage of ``windows`` (same section): earliest start, longest work."""
    ordered = sorted(windows, key=lambda w: (w.start, w.request_id))
    customers = max(w.customers for w in ordered)
    longest = max(w.hours for w in ordered)
    start = ordered[0].start
    return MergeProposal(
        section=ordered[0].section,
        request_ids=tuple(w.request_id for w in ordered),
        customers=customers,
        separate_customer_hours=round(sum(cost(w.customers, w.hours) for w in ordered), 4),
        merged_customer_hours=cost(customers, longest),
        start=start,
        end=start + timedelta(hours=longest),
    )


def merge_proposals(windows: Sequence[Window], *, window_days: float) -> list[MergeProposal]:
    """Groups of two or more requests on one section starting within ``window_days`` of the
    group's earliest start (greedy from the earliest), each with the customer-hours saved."""
    by_section: dict[str, list[Window]] = {}
    for window in windows:
        by_section.setdefault(window.section, []).append(window)
    found: list[MergeProposal] = []
    span = timedelta(days=window_days)
    for section in sorted(by_section):
        ordered = sorted(by_section[section], key=lambda w: (w.start, w.request_id))
        group: list[Window] = []
        for window in ordered:
            if group and window.start - group[0].start > span:
                if len(group) > 1:
                    found.append(merged_of(group))
                group = []
            group.append(window)
        if len(group) > 1:
            found.append(merged_of(group))
    return found


def notice_due(start: datetime, *, days_before: float, now: datetime) -> datetime:
    """When a planned outage's notice goes out: ``days_before`` before ``start``, or now."""
    return max(start - timedelta(days=days_before), now)


@dataclass(frozen=True, slots=True)
class BurnMonth:
    month: int
    used: float
    cumulative: float
    left: float


def burn_down(budget: float, used_by_month: Mapping[int, float]) -> list[BurnMonth]:
    """Month by month (1-12): customer-hours used, cumulative, budget left."""
    out: list[BurnMonth] = []
    total = 0.0
    for month in range(1, 13):
        used = round(used_by_month.get(month, 0.0), 4)
        total = round(total + used, 4)
        out.append(BurnMonth(month, used, total, round(budget - total, 4)))
    return out
