"""A planner's history in its own district, two and one months back, with known figures.

Other browser tests add orders in the demo district today; this history lives in a district
and crews of its own and in past months, so the figures below hold whatever ran before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from field_api.auth import service as auth_service
from field_api.checklists.models import ChecklistItemResult, ChecklistSubmission
from field_api.visits.models import Visit, VisitOutcome
from field_api.work_orders.rules import Stage
from tests.web.support import LiveServer

CHINA = timezone(timedelta(hours=8))
DISTRICT = ("SZ-FT", "福田测试区")
CREWS = (("FT-1", "福田一班"), ("FT-2", "福田二班"))
ONE_VISIT_STAGES = [
    "surveyed",
    "scheme_answered",
    "contract_signed",
    "installed",
    "inspected",
    "energised",
]


@dataclass(frozen=True)
class Seeded:
    month_2: str  # "YYYY-MM", two months back
    month_1: str  # one month back
    overdue_order: int


def _month_start(day: date, back: int) -> date:
    year, month = day.year, day.month - back
    while month < 1:
        month += 12
        year -= 1
    return date(year, month, 1)


def seed(live: LiveServer) -> Seeded:
    """Five energised orders (FT-1: met, missed, met; FT-2: met, met) and one overdue order.

    First-pass check: FT-1 passes 2 of 3, FT-2 1 of 2 (failures: earthing twice, seals once).
    One visit: FT-1 2 of 3, FT-2 1 of 2.
    """
    today = datetime.now(CHINA).date()
    m2, m1 = _month_start(today, 2), _month_start(today, 1)
    with live.session_factory.begin() as session:
        auth_service.create_district(
            session, code=DISTRICT[0], name=DISTRICT[1], lv_ceiling_kw=200.0, actor=None
        )
        for code, name in CREWS:
            auth_service.create_crew(
                session,
                code=code,
                name=name,
                district_code=DISTRICT[0],
                handles_repairs=False,
                actor=None,
            )
    # (crew, month start, days to energise, first check passed, failed items, one visit)
    plan = [
        ("FT-1", m2, 2, True, [], True),
        ("FT-1", m2, 14, False, ["earthing_resistance", "seal_numbers"], False),
        ("FT-2", m1, 2, True, [], True),
        ("FT-2", m1, 2, False, ["earthing_resistance"], False),
        ("FT-1", m1, 2, True, [], True),
    ]
    labels = {"earthing_resistance": "保护接地电阻", "seal_numbers": "表计及表箱封印编号"}
    for crew, month, days, passed, failed, one_visit in plan:
        accepted = datetime(month.year, month.month, 3, 9, 0, tzinfo=CHINA).astimezone(UTC)
        order_id = live.new_order(
            stage=Stage.energised,
            crew=crew,
            district=DISTRICT[0],
            accepted_at=accepted,
            step=timedelta(days=days) / 6,
        )
        with live.session_factory.begin() as session:
            crew_row = auth_service.get_crew_by_code(session, crew)
            assert crew_row is not None
            submission = ChecklistSubmission(
                order_id=order_id,
                phase="before_energising",
                attempt=1,
                card_code="LV-1P-RES",
                card_version=1,
                status="passed" if passed else "failed",
                passed=passed,
                submitted_at=accepted + timedelta(days=days) * 0.6,
                crew_id=crew_row.id,
                district_id=crew_row.district_id,
                kit_code="R1",
                values={},
                evidence={},
            )
            session.add(submission)
            session.flush()
            for code in failed:
                session.add(
                    ChecklistItemResult(
                        submission_id=submission.id,
                        item_code=code,
                        item_type="measurement",
                        label=labels[code],
                        critical=True,
                        passed=False,
                        value=None,
                        reason="outside the limit",
                    )
                )
            if one_visit:
                session.add(
                    Visit(
                        order_id=order_id,
                        crew_id=crew_row.id,
                        start_stage=Stage.accepted,
                        arrived_at=accepted,
                        arrival_lat=22.5333,
                        arrival_lon=113.9305,
                        arrival_distance_m=0.0,
                        outcome=VisitOutcome.completed,
                        completed_at=accepted + timedelta(days=days),
                        stages_done=ONE_VISIT_STAGES,
                    )
                )
    overdue = live.new_order(
        crew="FT-2", district=DISTRICT[0], accepted_at=datetime.now(UTC) - timedelta(days=20)
    )
    return Seeded(f"{m2:%Y-%m}", f"{m1:%Y-%m}", overdue)
