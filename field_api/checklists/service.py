"""Use cases of completion checks: submit a card phase, read results, planners' statistics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.auth.models import Crew, District
from field_api.checklists import evidence as evidence_source
from field_api.checklists.models import ChecklistItemResult, ChecklistSubmission
from field_api.checklists.rules import (
    PHASES,
    CardResult,
    CheckContext,
    ChecklistInputError,
    ItemValue,
    evaluate_card,
    evidence_pending,
    missing_evidence,
)
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.errors import Conflict, InvalidTransition, ServiceUnavailable, ValidationFailed
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Category, Stage
from standard_kits.catalogue import Catalogue
from standard_kits.loader import load_catalogue
from standard_kits.schemas import ChecklistCard, CheckPhase

CHINA = clock.CHINA_TZ  # the one China time zone (field_api.common.clock)
# The stage an order must be in to submit a phase, and the stage a pass moves it to.
PHASE_STAGES: dict[str, tuple[Stage, Stage]] = {
    "before_energising": (Stage.installed, Stage.inspected),
    "supply_on": (Stage.inspected, Stage.energised),
}
GroupBy = Literal["crew", "district", "kit", "card_version"]


def card_category(category: Category) -> str:
    """The card applicability category of an order category (cards know residential/business)."""
    return "residential" if category == Category.residential else "business"


def _check_phase(phase: str) -> CheckPhase:
    if phase not in PHASES:
        raise ValidationFailed(
            f"unknown check phase {phase!r}; one of: {', '.join(PHASES)}",
            code="checklist.unknown_phase",
            params={"phase": phase, "allowed": list(PHASES)},
        )
    return "before_energising" if phase == "before_energising" else "supply_on"


def submissions_of(
    session: Session, order_id: int, *, phase: str | None = None
) -> list[ChecklistSubmission]:
    """The order's submissions, oldest first."""
    query = select(ChecklistSubmission).where(ChecklistSubmission.order_id == order_id)
    if phase is not None:
        query = query.where(ChecklistSubmission.phase == phase)
    return list(session.execute(query.order_by(ChecklistSubmission.id)).scalars())


def items_of(session: Session, submission_ids: list[int]) -> dict[int, list[ChecklistItemResult]]:
    """Per-item verdicts of the given submissions, in card order."""
    grouped: dict[int, list[ChecklistItemResult]] = {i: [] for i in submission_ids}
    if not submission_ids:
        return grouped
    rows = session.execute(
        select(ChecklistItemResult)
        .where(ChecklistItemResult.submission_id.in_(submission_ids))
        .order_by(ChecklistItemResult.id)
    ).scalars()
    for row in rows:
        grouped[row.submission_id].append(row)
    return grouped


def has_passed(session: Session, order_id: int, phase: str) -> bool:
    """Whether a submission of ``phase`` passed for the order (the one-visit walk asks)."""
    found = session.execute(
        select(ChecklistSubmission.id)
        .where(
            ChecklistSubmission.order_id == order_id,
            ChecklistSubmission.phase == phase,
            ChecklistSubmission.passed.is_(True),
        )
        .limit(1)
    ).first()
    return found is not None


def card_for(session: Session, order: WorkOrder, *, metering: str | None) -> ChecklistCard:
    """The card version in force for the order.

    The version is fixed by the order's first submission, so a rework is judged by the same
    card even when a new version has been published since; before that, the version in force
    today (China time) for the order's category, phases and metering.
    """
    catalogue = load_catalogue()
    first = session.execute(
        select(ChecklistSubmission)
        .where(ChecklistSubmission.order_id == order.id)
        .order_by(ChecklistSubmission.id)
        .limit(1)
    ).scalar_one_or_none()
    if first is not None:
        card = catalogue.get_card(first.card_code, first.card_version)
        if card is None:
            raise ServiceUnavailable(
                f"card {first.card_code} v{first.card_version} used by this order is no longer "
                "in the catalogue",
                code="checklist.card_withdrawn",
                params={"card_code": first.card_code, "card_version": first.card_version},
            )
        return card
    if metering is None:
        raise ValidationFailed(
            f"order {order.id} has no accepted scheme saying how the meter is connected; the "
            "card cannot be chosen",
            code="checklist.no_accepted_scheme",
            params={"order_id": order.id},
        )
    today = clock.now().astimezone(CHINA).date()
    card = catalogue.card_in_force(
        category=card_category(order.category), phases=order.phases, metering=metering, on=today
    )
    if card is None:
        raise ValidationFailed(
            f"no checklist card in force for a {order.category.value} {order.phases}-phase "
            f"{metering}-metered installation on {today}",
            code="checklist.no_card",
            params={
                "category": order.category.value,
                "phases": order.phases,
                "metering": metering,
                "date": today.isoformat(),
            },
        )
    return card


def submit(
    session: Session,
    order_id: int,
    *,
    phase: str,
    values: dict[str, ItemValue],
    actor: Principal,
    device_time: datetime | None = None,
) -> ChecklistSubmission:
    """Evaluate and store one phase of the order's card; a pass moves the order on.

    A failed check is stored (it is a result, not an error) and can be submitted again after
    rework with the next attempt number. Impossible readings (422), a submission before the
    evidence exists (409, naming what is missing) and one before the barcode photo is decoded
    (503 with Retry-After) are refused and store nothing: they never count as an attempt, so
    they never lower the first-pass rate.
    """
    check_phase = _check_phase(phase)
    order = orders.get_for_actor(session, order_id, actor, write=True)
    target = _phase_target(session, order, check_phase)
    gathered = evidence_source.gather(session, order)
    card = card_for(session, order, metering=gathered.metering)
    result = _judge(card, values, gathered, order_id=order.id, phase=check_phase)
    submission = _store(
        session,
        order,
        card,
        result,
        gathered,
        phase=check_phase,
        values=values,
        actor=actor,
        device_time=device_time,
    )
    if result.passed:
        orders.transition(
            session,
            order,
            target,
            actor=actor,
            device_time=device_time,
            data={"checklist_submission": submission.id, "card": f"{card.code} v{card.version}"},
        )
    return submission


def _phase_target(session: Session, order: WorkOrder, phase: CheckPhase) -> Stage:
    """The stage a pass of ``phase`` moves the order to; refused once passed or out of stage."""
    required, target = PHASE_STAGES[phase]
    if has_passed(session, order.id, phase):
        raise Conflict(
            f"the {phase} check of order {order.id} has already passed",
            code="checklist.already_passed",
            params={"phase": phase, "order_id": order.id},
        )
    if order.stage != required:
        raise InvalidTransition(
            f"the {phase} check is submitted when the order is {required.value}; "
            f"order {order.id} is {order.stage.value}",
            code="checklist.wrong_stage",
            params={
                "phase": phase,
                "order_id": order.id,
                "required": required.value,
                "stage": order.stage.value,
            },
        )
    return target


def _judge(
    card: ChecklistCard,
    values: dict[str, ItemValue],
    gathered: evidence_source.OrderEvidence,
    *,
    order_id: int,
    phase: CheckPhase,
) -> CardResult:
    """Judge the readings against the card; refuse (store nothing) impossible readings (422),
    missing evidence (409) and evidence still being analysed (503)."""
    try:
        result = evaluate_card(card, values, gathered.context, phase=phase)
    except ChecklistInputError as exc:
        raise ValidationFailed(
            exc.problems,
            code="checklist.readings_invalid",
            params={
                "count": len(exc.messages),
                "problems": [m.as_dict() for m in exc.messages],
            },
        ) from exc
    missing = missing_evidence(card, gathered.context, phase=phase)
    if missing:
        # Refused, not failed: no attempt is stored, so first-pass statistics never see it.
        raise Conflict(
            f"the {phase} check of order {order_id} cannot be submitted before its "
            f"evidence exists; missing: {'; '.join(m.english for m in missing)}",
            code="checklist.evidence_missing",
            params={
                "order_id": order_id,
                "phase": phase,
                "missing": [m.as_dict() for m in missing],
            },
        )
    pending = evidence_pending(card, gathered.context, phase=phase)
    if pending:
        # Transient: the photo is stored and its analysis runs; the crew app retries a 503.
        raise ServiceUnavailable(
            f"the {phase} check of order {order_id} waits for its evidence to be "
            f"processed: {'; '.join(pending)}; retry shortly",
            code="checklist.evidence_pending",
            params={"order_id": order_id, "phase": phase},
            headers={"Retry-After": "5"},
        )
    return result


def _store(
    session: Session,
    order: WorkOrder,
    card: ChecklistCard,
    result: CardResult,
    gathered: evidence_source.OrderEvidence,
    *,
    phase: CheckPhase,
    values: dict[str, ItemValue],
    actor: Principal,
    device_time: datetime | None,
) -> ChecklistSubmission:
    """Store the attempt (the next attempt number of the phase) and its item verdicts."""
    previous = session.execute(
        select(func.max(ChecklistSubmission.attempt)).where(
            ChecklistSubmission.order_id == order.id, ChecklistSubmission.phase == phase
        )
    ).scalar_one()
    submission = ChecklistSubmission(
        order_id=order.id,
        phase=phase,
        attempt=(previous or 0) + 1,
        card_code=card.code,
        card_version=card.version,
        status=result.status,
        passed=result.passed,
        submitted_at=clock.now(),
        device_time=device_time,
        submitted_by=actor.user_id,
        crew_id=order.crew_id,
        district_id=order.district_id,
        kit_code=gathered.kit_code,
        values=dict(values),
        evidence=gathered.snapshot(),
    )
    session.add(submission)
    session.flush()
    labels = {item.code: item.label.zh for item in card.items}
    for item in result.items:
        session.add(
            ChecklistItemResult(
                submission_id=submission.id,
                item_code=item.code,
                item_type=item.type,
                label=labels.get(item.code, item.code)[:200],
                critical=item.critical,
                passed=item.passed,
                value=item.value,
                reason=item.reason,
                params=item.message,
            )
        )
    audit.record(session, actor=actor, action=f"checklist.{phase}", entity=submission)
    return submission


# ---------------------------------------------------------------------------- statistics


def day_range(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of whole China days from ``date_from`` to ``date_to`` inclusive."""
    if date_to < date_from:
        raise ValidationFailed(
            "the date range ends before it starts",
            code="request.date_range_reversed",
        )
    start = datetime.combine(date_from, time.min, CHINA).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, CHINA).astimezone(UTC)
    return start, end


@dataclass(frozen=True)
class FirstPassRow:
    """First-pass acceptance of one group: a crew or district by its code and name (as in every
    planner report), a kit or card version by its code (the name repeats it)."""

    code: str
    name: str
    checked: int
    passed_first: int
    rate: float | None


def first_pass(
    session: Session,
    *,
    date_from: date,
    date_to: date,
    group_by: GroupBy,
    phase: str = "before_energising",
) -> list[FirstPassRow]:
    """First-pass acceptance rate (验收一次通过率) per group over first attempts in the range.

    Only each order's first attempt counts: a check passed on the second attempt after rework
    is a first-pass failure.
    """
    check_phase = _check_phase(phase)
    start, end = day_range(date_from, date_to)
    rows = session.execute(
        select(ChecklistSubmission).where(
            ChecklistSubmission.attempt == 1,
            ChecklistSubmission.phase == check_phase,
            ChecklistSubmission.submitted_at >= start,
            ChecklistSubmission.submitted_at < end,
        )
    ).scalars()
    checked: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for row in rows:
        key = _group_key(row, group_by)
        checked[key] += 1
        passed[key] += int(row.passed)
    labels = _group_labels(session, group_by, list(checked))
    result = [
        FirstPassRow(
            code=labels.get(key, (key, key))[0],
            name=labels.get(key, (key, key))[1],
            checked=checked[key],
            passed_first=passed[key],
            rate=passed[key] / checked[key],
        )
        for key in checked
    ]
    return sorted(result, key=lambda r: r.code)


def _group_key(row: ChecklistSubmission, group_by: GroupBy) -> str:
    if group_by == "crew":
        return str(row.crew_id) if row.crew_id is not None else "-"
    if group_by == "district":
        return str(row.district_id)
    if group_by == "kit":
        return row.kit_code or "-"
    return f"{row.card_code} v{row.card_version}"


def _group_labels(
    session: Session, group_by: GroupBy, keys: list[str]
) -> dict[str, tuple[str, str]]:
    """Code and name of each crew or district id among ``keys``."""
    ids = [int(k) for k in keys if k.isdigit()]
    if group_by == "crew" and ids:
        crews = session.execute(select(Crew).where(Crew.id.in_(ids))).scalars()
        return {str(c.id): (c.code, c.name) for c in crews}
    if group_by == "district" and ids:
        districts = session.execute(select(District).where(District.id.in_(ids))).scalars()
        return {str(d.id): (d.code, d.name) for d in districts}
    return {}


@dataclass(frozen=True)
class ParetoRow:
    """One failing item in the Pareto of failures."""

    item_code: str
    label: str
    failures: int
    share: float
    cumulative_share: float


def item_labels(card_code: str, card_version: int, language: str) -> dict[str, str]:
    """The names of a card's items in ``language`` (empty when the card left the catalogue)."""
    card = load_catalogue().get_card(card_code, card_version)
    if card is None:
        return {}
    return {i.code: i.label.en if language == "en" else i.label.zh for i in card.items}


def _item_label(
    catalogue: Catalogue, card_code: str, card_version: int, item_code: str, language: str
) -> str | None:
    card = catalogue.get_card(card_code, card_version)
    item = next((i for i in card.items if i.code == item_code), None) if card else None
    if item is None:
        return None
    return item.label.en if language == "en" else item.label.zh


def failing_items(
    session: Session,
    *,
    date_from: date,
    date_to: date,
    phase: str | None = None,
    language: str = "zh-CN",
) -> list[ParetoRow]:
    """Failed items over all attempts in the range, most frequent first, with cumulative share.

    Each item is named in ``language`` from the card it was judged by (the name stored with
    the result, in Chinese, when the card has left the catalogue).
    """
    start, end = day_range(date_from, date_to)
    query = (
        select(
            ChecklistItemResult.item_code,
            ChecklistItemResult.label,
            ChecklistSubmission.card_code,
            ChecklistSubmission.card_version,
        )
        .join(ChecklistSubmission, ChecklistSubmission.id == ChecklistItemResult.submission_id)
        .where(
            ChecklistItemResult.passed.is_(False),
            ChecklistSubmission.submitted_at >= start,
            ChecklistSubmission.submitted_at < end,
        )
    )
    if phase is not None:
        query = query.where(ChecklistSubmission.phase == _check_phase(phase))
    counts: Counter[str] = Counter()
    labels: dict[str, str] = {}
    catalogue = load_catalogue()
    for code, label, card_code, card_version in session.execute(query):
        counts[code] += 1
        if code not in labels:
            labels[code] = _item_label(catalogue, card_code, card_version, code, language) or label
    total = sum(counts.values())
    result: list[ParetoRow] = []
    running = 0
    for code, failures in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        running += failures
        result.append(
            ParetoRow(
                item_code=code,
                label=labels[code],
                failures=failures,
                share=failures / total,
                cumulative_share=running / total,
            )
        )
    return result


# ---------------------------------------------------------------------------- the API's reads


def attempts_for_actor(
    session: Session, order_id: int, actor: Principal
) -> tuple[list[ChecklistSubmission], dict[int, list[ChecklistItemResult]]]:
    """The submissions of an order the actor may read, oldest first, with their verdicts."""
    orders.get_for_actor(session, order_id, actor, write=False)
    rows = submissions_of(session, order_id)
    return rows, items_of(session, [r.id for r in rows])


def card_for_actor(
    session: Session, order_id: int, actor: Principal
) -> tuple[ChecklistCard, CheckContext]:
    """The card an order the actor may read will be checked against, and the context (scheme
    figures, transformer size) its items cite."""
    order = orders.get_for_actor(session, order_id, actor, write=False)
    gathered = evidence_source.gather(session, order)
    return card_for(session, order, metering=gathered.metering), gathered.context
