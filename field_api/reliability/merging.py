""""One outage, many uses": merge proposals and merges; live-line work; the budget page.

Requests still waiting (``requested``) on the same feeder section whose starts fall within
``FIELDOPS_RELIABILITY_MERGE_WINDOW_DAYS`` of the earliest are proposed for merging, with the
customer-hours saved (:func:`field_api.reliability.planning_rules.merge_proposals`). Accepting
a merge keeps every request: the earliest becomes the host (its window from its start for the
longest work, its cost the merged cost), the others turn ``merged`` (their work and requester
listed among the host's works, their cost 0). Live-line work records the customer-hours an
outage would have cost (customers on the section that day x the hours it would have taken).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.reliability import planning, planning_rules, sections
from field_api.reliability.models import LiveLineJob, PlannedOutageRequest
from field_api.reliability.planning_rules import RequestState, Window
from field_api.reliability.planning_schemas import (
    BudgetDashboardRead,
    BurnMonthRead,
    DistrictBurnRead,
    LiveLineCreate,
    LiveLineRead,
    MergeCreate,
    MergeProposalRead,
    PlannedOutageRead,
    WorkRead,
)
from field_api.reliability.register import READ_ROLES, require


def _windows(requests: list[PlannedOutageRequest]) -> list[Window]:
    return [Window(r.id, r.switch_code, r.start_at, r.end_at, r.customers) for r in requests]


def _waiting(session: Session) -> list[PlannedOutageRequest]:
    query = select(PlannedOutageRequest).where(
        PlannedOutageRequest.state == RequestState.requested.value
    ).order_by(PlannedOutageRequest.start_at, PlannedOutageRequest.id)
    return list(session.execute(query).scalars())


def _proposal_read(
    proposal: planning_rules.MergeProposal, by_id: dict[int, PlannedOutageRequest]
) -> MergeProposalRead:
    return MergeProposalRead(
        switch_code=proposal.section, request_ids=list(proposal.request_ids),
        works=[WorkRead(request_id=i, work=by_id[i].work, requester=by_id[i].requester)
               for i in proposal.request_ids],
        customers=proposal.customers, separate_customer_hours=proposal.separate_customer_hours,
        merged_customer_hours=proposal.merged_customer_hours,
        saved_customer_hours=proposal.saved_customer_hours, start_at=proposal.start,
        end_at=proposal.end, start_at_local=planning.local(proposal.start),
        end_at_local=planning.local(proposal.end),
    )


def proposals(
    session: Session, settings: Settings, actor: Principal, *, year: int | None = None
) -> list[MergeProposalRead]:
    """Merge proposals over the requests still waiting (those starting in ``year``, or all; a
    group across New Year belongs to the year of its earliest start)."""
    require(actor, READ_ROLES, "read merge proposals")
    waiting = _waiting(session)
    by_id = {r.id: r for r in waiting}
    found = planning_rules.merge_proposals(
        _windows(waiting), window_days=settings.reliability.merge_window_days
    )
    return [_proposal_read(p, by_id) for p in found
            if year is None or planning.year_of(p.start) == year]


def _merge_invalid(reason: str) -> ValidationFailed:
    return ValidationFailed(reason, code="reliability.merge_invalid", params={"reason": reason})


def merge(
    session: Session, settings: Settings, body: MergeCreate, actor: Principal
) -> PlannedOutageRead:
    """Do these waiting requests in one outage (planners, admins); answers the host."""
    require(actor, planning.PLAN_ROLES, "merge planned outages")
    ids = sorted(set(body.request_ids))
    if len(ids) < 2:
        raise _merge_invalid("name two or more different requests")
    requests = [planning.get_request(session, i) for i in ids]
    for request in requests:
        if request.state != RequestState.requested.value:
            raise _merge_invalid(f"request {request.id} is {request.state}, not requested")
    if len({r.switch_code for r in requests}) != 1:
        raise _merge_invalid("the requests are on different feeder sections")
    merged = planning_rules.merged_of(_windows(requests))
    span = timedelta(days=settings.reliability.merge_window_days)
    if max(r.start_at for r in requests) - merged.start > span:
        raise _merge_invalid("the windows are further apart than the merge window")
    host = next(r for r in requests if r.id == merged.request_ids[0])
    host.start_at, host.end_at = merged.start, merged.end
    host.customers, host.customer_hours = merged.customers, merged.merged_customer_hours
    session.flush()
    audit.record(session, actor=actor, action="reliability.planned_outage_merged", entity=host,
                 detail="host of " + ",".join(str(i) for i in merged.request_ids[1:]))
    for member in requests:
        if member is not host:
            member.state, member.merged_into = RequestState.merged.value, host.id
            member.customer_hours = 0.0
            session.flush()
            audit.record(session, actor=actor, action="reliability.planned_outage_merged",
                         entity=member, detail=f"into {host.id}")
    return planning.read_request(session, settings, host)


# --- live-line work ----------------------------------------------------------------------------


def _live_read(job: LiveLineJob) -> LiveLineRead:
    return LiveLineRead(
        id=job.id, district=job.district, switch_code=job.switch_code,
        transformer_codes=list(job.transformer_codes), work=job.work, done_on=job.done_on,
        outage_hours=job.outage_hours, customers=job.customers,
        customer_hours_avoided=job.customer_hours_avoided,
    )


def record_live_line(session: Session, body: LiveLineCreate, actor: Principal) -> LiveLineRead:
    """Live-line work done instead of an outage (dispatchers, admins)."""
    require(actor, planning.REQUEST_ROLES, "record live-line work")
    if body.done_on > clock.china_today():
        raise ValidationFailed("done_on is in the future", code="reliability.live_line_invalid",
                               params={"reason": "done_on is in the future"})
    _, district, codes = sections.section(session, body.switch_code)
    customers = len(sections.customers_of(session, codes, body.done_on))
    job = LiveLineJob(
        district=district, switch_code=body.switch_code, transformer_codes=codes,
        work=body.work, done_on=body.done_on, outage_hours=body.outage_hours,
        customers=customers, customer_hours_avoided=planning_rules.cost(customers,
                                                                        body.outage_hours),
        recorded_by=actor.user_id, created_at=clock.now(),
    )
    session.add(job)
    session.flush()
    audit.record(session, actor=actor, action="reliability.live_line_recorded", entity=job)
    return _live_read(job)


def live_line_jobs(
    session: Session, actor: Principal, *, year: int, district: str | None = None
) -> list[LiveLineRead]:
    require(actor, READ_ROLES, "read live-line work")
    return [_live_read(j) for j in planning.live_line_in(session, district, year)]


# --- the planner page --------------------------------------------------------------------------


def _district_burn(
    session: Session, settings: Settings, district: str, year: int
) -> DistrictBurnRead:
    by_month: dict[int, float] = {}
    for request in planning.approved_in(session, district, year):
        month = clock.to_china(request.start_at).month
        by_month[month] = by_month.get(month, 0.0) + planning.counted_hours(session, request)
    budget = planning.budget_amount(session, settings, district, year)
    months = planning_rules.burn_down(budget, by_month)
    spent = months[-1].cumulative
    avoided = round(sum(j.customer_hours_avoided
                        for j in planning.live_line_in(session, district, year)), 4)
    return DistrictBurnRead(
        district=district, budget_customer_hours=budget, used_customer_hours=spent,
        live_line_customer_hours_avoided=avoided,
        live_line_share=round(avoided / (avoided + spent), 4) if avoided + spent > 0 else None,
        months=[BurnMonthRead(month=m.month, used_customer_hours=m.used,
                              cumulative_customer_hours=m.cumulative,
                              left_customer_hours=m.left) for m in months],
    )


def dashboard(
    session: Session, settings: Settings, actor: Principal, *, year: int | None = None
) -> BudgetDashboardRead:
    """The budget page's figures for ``year`` (default: this China year)."""
    require(actor, READ_ROLES, "read outage budgets")
    year = year or clock.china_today().year
    return BudgetDashboardRead(
        year=year,
        districts=[_district_burn(session, settings, d, year)
                   for d in planning.districts(session, year)],
        proposals=proposals(session, settings, actor, year=year),
    )
