"""A planner's history in its own district, two and one months back, with known figures.

Other browser tests, and the demo's six months of history, add orders elsewhere: this history
lives in a district, crews and an inspected line of its own, so the per-crew, per-district and
per-line figures below hold whatever ran before (the all-orders trend and Pareto do not).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from PIL import Image

from field_api.auth import service as auth_service
from field_api.checklists.models import ChecklistItemResult, ChecklistSubmission
from field_api.inspections import importing
from field_api.visits.models import Visit, VisitOutcome
from field_api.work_orders.rules import Stage
from tests.web.support import LiveServer
from vision import records as rec

CHINA = timezone(timedelta(hours=8))
LINE = "L-PT-01"  # an inspected line of its own: two poles, one seen, two open defects
DISTRICT = ("T-PLN", "计划测试区")
CREWS = (("PT-1", "计划一班"), ("PT-2", "计划二班"))
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


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), color).save(buf, "JPEG")
    return buf.getvalue()


def seed_inspections(live: LiveServer, root: Path) -> None:
    """A drone batch on ``LINE`` imported through the service: pole PT-P1 photographed two days
    ago with two defects (severity 3 and 2), pole PT-P2 not seen. Coverage 1/2."""
    out = root / "planner-batch"
    out.mkdir(parents=True, exist_ok=True)
    photo = _jpeg((40, 160, 90))
    (out / "PT_0001.JPG").write_bytes(photo)
    photo_id = hashlib.sha256(photo).hexdigest()
    batch = "batch-planner-0001"
    here = rec.GeoPoint(lat=22.5410, lon=114.0550)
    items: list[object] = [
        rec.PhotoRecord(
            id=rec.stable_id("photo", photo_id),
            batch_id=batch,
            photo_id=photo_id,
            path="PT_0001.JPG",
            width_px=320,
            height_px=240,
            captured_at=datetime.now(UTC) - timedelta(days=2),
            camera=here,
            asset_id="PT-P1",
            detections=2,
        ),
        *(
            rec.DetectionRecord(
                id=f"det-planner-{severity}",
                batch_id=batch,
                photo_id=photo_id,
                class_id=1,
                class_name="defect",
                role="defect",
                confidence=0.9,
                severity=severity,
                xyxy=(100, 80, 160, 130),
                ground=here,
                asset_id="PT-P1",
                attach="ground_point",
            )
            for severity in (3, 2)
        ),
        rec.AssetRecord(
            id=rec.stable_id("asset", "PT-P1"),
            batch_id=batch,
            asset_id="PT-P1",
            name="计划1号杆",
            line_id=LINE,
            status="inspected",
            position=here,
            sightings=1,
            photo_ids=[photo_id],
            detection_ids=["det-planner-3", "det-planner-2"],
            defect_ids=["det-planner-3", "det-planner-2"],
            max_severity=3,
        ),
        rec.AssetRecord(
            id=rec.stable_id("asset", "PT-P2"),
            batch_id=batch,
            asset_id="PT-P2",
            name="计划2号杆",
            line_id=LINE,
            status="uninspected",
            position=rec.GeoPoint(lat=22.5420, lon=114.0560),
        ),
    ]
    rec.write_jsonl(items, out / "records.jsonl")  # type: ignore[arg-type]
    with live.session_factory.begin() as session:
        importing.import_batch(
            session, out, settings=live.settings, actor=None, confined=False
        )


def seed(live: LiveServer) -> Seeded:
    """Five energised orders (PT-1: met, missed, met; PT-2: met, met) and one overdue order.

    First-pass check: PT-1 passes 2 of 3, PT-2 1 of 2 (failures: earthing twice, seals once).
    One visit: PT-1 2 of 3, PT-2 1 of 2.
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
        ("PT-1", m2, 2, True, [], True),
        ("PT-1", m2, 14, False, ["earthing_resistance", "seal_numbers"], False),
        ("PT-2", m1, 2, True, [], True),
        ("PT-2", m1, 2, False, ["earthing_resistance"], False),
        ("PT-1", m1, 2, True, [], True),
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
        crew="PT-2", district=DISTRICT[0], accepted_at=datetime.now(UTC) - timedelta(days=20)
    )
    return Seeded(f"{m2:%Y-%m}", f"{m1:%Y-%m}", overdue)
