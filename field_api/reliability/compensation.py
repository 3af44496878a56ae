"""Compensation for service interruptions: the policy from settings, each supply point's own
interruptions from the outage records, and what is owed for a period (planners, admins).

The policy file is named by ``FIELDOPS_RELIABILITY_COMPENSATION_PATH`` (TOML, see
:mod:`field_api.reliability.compensation_rules`). Without it the report is refused with
``reliability.compensation_policy_missing`` (409), never answered with zeros; only a development
server (``FIELDOPS_ENV=development``, what ``make run`` uses) falls back to
:data:`DEVELOPMENT_POLICY`, and says so (``policy.source``: ``development_default``).

A supply point is out in an outage when one of its accounts is on the register (connected on
the outage's China date) under a transformer of one of the outage's segments; its interruption
ends when that segment was restored (an outage restored in steps gives each supply point its
own duration). Open segments are counted apart (not final) and so are override segments (the
register did not know who was out). Nothing here writes: a report reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Conflict, ValidationFailed
from field_api.network.models import Transformer
from field_api.reliability import compensation_rules as comp
from field_api.reliability.compensation_schemas import (
    CategoryRuleRead,
    CompensationRead,
    CompensationTotalRead,
    PolicyRead,
)
from field_api.reliability.models import Customer, Outage, OutageSegment
from field_api.reliability.register import require

COMPENSATION_ROLES = (Role.planner, Role.admin)
POLICY_VARIABLE = "FIELDOPS_RELIABILITY_COMPENSATION_PATH"
MAX_PERIOD_DAYS = 366

#: The policy a development server uses while no file is named (never production or tests):
#: it exists so the demo (``make run``) shows compensation figures. Not a recommendation.
DEVELOPMENT_POLICY = """\
# DEVELOPMENT DEFAULT (demo only) - production needs FIELDOPS_RELIABILITY_COMPENSATION_PATH
counts_above_min = 3

[category.lv]
long_hours = 4
long_credit = "20.00"
# low so the demo's few outages show frequency credits too
yearly_count = 1
beyond_credit = "10.00"

[category.mv]
long_hours = 4
long_credit = "200.00"
"""


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    policy: comp.Policy
    source: str


def _invalid_policy(reason: str) -> Conflict:
    return Conflict(
        f"the compensation policy is invalid: {reason}",
        code="reliability.compensation_policy_invalid",
        params={"reason": reason},
    )


def load_policy(settings: Settings) -> LoadedPolicy:
    """The operator's policy, the development default, or a 409 that says which is wrong."""
    path = settings.reliability.compensation_path
    if path is None:
        if settings.env == "development":
            return LoadedPolicy(comp.parse_policy(DEVELOPMENT_POLICY), "development_default")
        raise Conflict(
            f"no compensation policy is set ({POLICY_VARIABLE})",
            code="reliability.compensation_policy_missing",
            params={"variable": POLICY_VARIABLE},
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _invalid_policy(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _invalid_policy(f"{path} is not UTF-8 text") from exc
    try:
        return LoadedPolicy(comp.parse_policy(text), "file")
    except comp.PolicyError as exc:
        raise _invalid_policy(str(exc)) from exc


# --- each supply point's interruptions ----------------------------------------------------------


def _china_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=clock.CHINA_TZ).astimezone(UTC)


@dataclass(slots=True)
class Gathered:
    points: dict[str, comp.SupplyPoint]
    interruptions: dict[str, dict[int, comp.PointInterruption]]
    open_interruptions: int = 0
    unattributed: int = 0


@dataclass(frozen=True, slots=True)
class _Account:
    account_no: str
    supply_point: str
    category: str
    district: str
    area: str
    connected_on: date
    removed_on: date | None

    def served_on(self, day: date) -> bool:
        return self.connected_on <= day and (self.removed_on is None or self.removed_on > day)


def _accounts_by_transformer(session: Session, codes: set[str]) -> dict[str, list[_Account]]:
    if not codes:
        return {}
    rows = session.execute(
        select(Transformer.code, Customer)
        .join(Transformer, Transformer.id == Customer.transformer_id)
        .where(Transformer.code.in_(sorted(codes)))
        .order_by(Customer.supply_point, Customer.account_no)
    )
    found: dict[str, list[_Account]] = {}
    for code, c in rows:
        found.setdefault(code, []).append(
            _Account(
                c.account_no,
                c.supply_point,
                c.supply_kind,
                c.district,
                str(c.area),
                c.connected_on,
                c.removed_on,
            )
        )
    return found


def gather(
    session: Session, since: datetime, until: datetime, period_from: datetime, as_of: datetime
) -> Gathered:
    """Every supply point's closed interruptions that began in [since, until) (and by
    ``as_of``); open and override segments of the period [period_from, until) counted apart."""
    segments = session.execute(
        select(Outage.id, Outage.start_at, OutageSegment)
        .join(OutageSegment, OutageSegment.outage_id == Outage.id)
        .where(Outage.start_at >= since, Outage.start_at < until, Outage.start_at <= as_of)
        .order_by(Outage.start_at, Outage.id, OutageSegment.id)
    ).all()
    accounts = _accounts_by_transformer(
        session, {s.transformer_code for _, _, s in segments if s.transformer_code}
    )
    out = Gathered(points={}, interruptions={})
    seen_accounts: dict[str, set[str]] = {}
    for outage_id, start, segment in segments:
        in_period = start >= period_from
        if segment.transformer_code is None or segment.restored_at is None:
            if in_period and segment.transformer_code is None:
                out.unattributed += 1
            elif in_period:
                out.open_interruptions += 1
            continue
        day = clock.china_date(start)
        for account in accounts.get(segment.transformer_code, []):
            if (account.district, account.area) != (segment.district, str(segment.area)):
                continue
            if not account.served_on(day):
                continue
            point = account.supply_point
            if in_period:
                seen_accounts.setdefault(point, set()).add(account.account_no)
            out.points.setdefault(
                point, comp.SupplyPoint(point, account.category, account.district, account.area)
            )
            mine = out.interruptions.setdefault(point, {})
            earlier = mine.get(outage_id)
            end = segment.restored_at if earlier is None else max(earlier.end, segment.restored_at)
            mine[outage_id] = comp.PointInterruption(outage_id, start, end)
    for point, numbers in seen_accounts.items():
        found = out.points[point]
        out.points[point] = comp.SupplyPoint(
            found.id, found.category, found.district, found.area, tuple(sorted(numbers))
        )
    return out


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date
    as_of: datetime

    @property
    def utc_from(self) -> datetime:
        return _china_midnight(self.start)

    @property
    def utc_until(self) -> datetime:
        return _china_midnight(self.end + timedelta(days=1))


def period_of(start: date | None, end: date | None) -> Period:
    """[start, end] in China dates: by default the 1st of January of ``end``'s year to today."""
    as_of = clock.now()
    today = clock.china_date(as_of)
    end = end or today
    start = start or date(end.year, 1, 1)
    if end < start:
        raise ValidationFailed(
            f"the period ends ({end}) before it starts ({start})",
            code="reliability.compensation_period_invalid",
            params={"start": start.isoformat(), "end": end.isoformat()},
        )
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise ValidationFailed(
            f"the period is longer than {MAX_PERIOD_DAYS} days",
            code="reliability.compensation_period_too_long",
            params={"max_days": MAX_PERIOD_DAYS},
        )
    if start > today:
        raise ValidationFailed(
            f"{start} has not begun",
            code="reliability.month_in_future",
            params={"month": start.isoformat()},
        )
    return Period(start, end, as_of)


def owed_points(
    session: Session, settings: Settings, actor: Principal, period: Period
) -> tuple[LoadedPolicy, list[comp.Owed], Gathered]:
    """What each supply point interrupted in the period is owed (by supply point id)."""
    require(actor, COMPENSATION_ROLES, "read compensation")
    loaded = load_policy(settings)
    year_start = _china_midnight(date(period.start.year, 1, 1))
    found = gather(session, year_start, period.utc_until, period.utc_from, period.as_of)
    items = [
        comp.owed(
            found.points[point],
            found.interruptions[point].values(),
            loaded.policy,
            start=period.utc_from,
            end=period.utc_until,
        )
        for point in sorted(found.points)
    ]
    return loaded, [i for i in items if i.interruptions], found


def _policy_read(loaded: LoadedPolicy) -> PolicyRead:
    return PolicyRead(
        source="file" if loaded.source == "file" else "development_default",
        counts_above_min=loaded.policy.counts_above_min,
        categories=[
            CategoryRuleRead(
                category=name,
                long_hours=r.long_hours,
                long_credit=r.long_credit,
                yearly_count=r.yearly_count,
                beyond_credit=r.beyond_credit,
            )
            for name, r in loaded.policy.categories.items()
        ],
    )


def _total_read(
    district: str | None, category: str | None, covered: bool, t: comp.Total
) -> CompensationTotalRead:
    return CompensationTotalRead(
        district=district,
        category=category,
        covered=covered,
        supply_points=t.supply_points,
        owed_supply_points=t.owed_supply_points,
        interruptions=t.interruptions,
        long_interruptions=t.long_interruptions,
        beyond_interruptions=t.beyond_interruptions,
        long_credit=t.long_credit,
        beyond_credit=t.beyond_credit,
        total=t.total,
    )


def summary(
    session: Session,
    settings: Settings,
    actor: Principal,
    *,
    start: date | None = None,
    end: date | None = None,
) -> CompensationRead:
    """Totals per district and category of what the period's interruptions are owed."""
    require(actor, COMPENSATION_ROLES, "read compensation")
    period = period_of(start, end)
    loaded, items, found = owed_points(session, settings, actor, period)
    covered = set(loaded.policy.categories)
    overall = comp.Total()
    for item in items:
        overall.add(item)
    return CompensationRead(
        start=period.start,
        end=period.end,
        as_of=period.as_of,
        policy=_policy_read(loaded),
        totals=[_total_read(d, c, c in covered, t) for (d, c), t in comp.totals(items).items()],
        overall=_total_read(None, None, True, overall),
        uncovered_categories=sorted({i.point.category for i in items if not i.covered}),
        open_interruptions=found.open_interruptions,
        unattributed_interruptions=found.unattributed,
    )


CSV_COLUMNS = (
    "supply_point",
    "accounts",
    "category",
    "district",
    "area",
    "covered",
    "interruptions",
    "long_interruptions",
    "beyond_interruptions",
    "long_credit",
    "beyond_credit",
    "total",
    "period_start",
    "period_end",
)


def csv_rows(
    session: Session,
    settings: Settings,
    actor: Principal,
    *,
    start: date | None = None,
    end: date | None = None,
) -> tuple[Period, list[dict[str, object]]]:
    """One billing row per supply point interrupted in the period, keyed by supply point and
    account numbers (no names, no phones)."""
    require(actor, COMPENSATION_ROLES, "read compensation")
    period = period_of(start, end)
    _, items, _ = owed_points(session, settings, actor, period)
    return period, [_csv_row(period, i) for i in items]


def _csv_row(period: Period, item: comp.Owed) -> dict[str, object]:
    return {
        "supply_point": item.point.id,
        "accounts": ";".join(item.point.accounts),
        "category": item.point.category,
        "district": item.point.district,
        "area": item.point.area,
        "covered": item.covered,
        "interruptions": item.interruptions,
        "long_interruptions": item.long_interruptions,
        "beyond_interruptions": item.beyond_interruptions,
        "long_credit": item.long_credit,
        "beyond_credit": item.beyond_credit,
        "total": item.total,
        "period_start": period.start,
        "period_end": period.end,
    }
