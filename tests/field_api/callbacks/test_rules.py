"""Call-back due dates and the detectors of off-system processing, on fixed dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

from field_api.callbacks.rules import (
    CHINA_TZ,
    DetectorSettings,
    Evidence,
    FlagKind,
    Irregularity,
    OrderFacts,
    callback_due,
    default_callback_settings,
    detect,
)
from field_api.common.calendar import WorkingCalendar

CAL = WorkingCalendar()
CFG = DetectorSettings()
ACCEPTED = datetime(2025, 9, 29, 9, 0, tzinfo=CHINA_TZ)


def test_bundled_settings_load() -> None:
    settings = default_callback_settings()
    assert settings.callback_due_working_days == 3
    assert settings.detectors.min_minutes_acceptance_to_installation == 60


def test_callback_due_counts_working_days_from_the_local_day_of_energisation() -> None:
    # 2025-09-30 17:00 UTC is already 10-01 in China (a holiday): 3 working days → 10-11.
    due = callback_due(CAL, datetime(2025, 9, 30, 17, 0, tzinfo=UTC), 3)
    assert due.due == date(2025, 10, 11)


def test_clean_order_raises_no_flag() -> None:
    facts = OrderFacts(
        applied_on=date(2025, 9, 29),
        accepted_at=ACCEPTED,
        installed_at=datetime(2025, 9, 29, 15, 0, tzinfo=CHINA_TZ),
        evidence=[Evidence("meter photo", datetime(2025, 9, 29, 14, 0))],
    )
    assert detect(CAL, facts, CFG) == []


def test_evidence_before_application_is_flagged_with_the_earliest_item() -> None:
    facts = OrderFacts(
        applied_on=date(2025, 9, 29),
        accepted_at=ACCEPTED,
        evidence=[
            Evidence("meter photo", datetime(2025, 9, 28, 16, 0)),  # naive: China time
            Evidence("seal photo", datetime(2025, 9, 29, 0, 0, tzinfo=UTC)),
            Evidence("site photo", datetime(2025, 9, 29, 8, 45)),  # inside the tolerance
        ],
    )
    flags = detect(CAL, facts, CFG)
    assert [f.kind for f in flags] == [FlagKind.evidence_before_application]
    assert "2 evidence item(s)" in flags[0].reason
    assert "meter photo at 2025-09-28 16:00" in flags[0].reason


def test_application_recorded_long_after_stated_date_is_flagged() -> None:
    facts = OrderFacts(
        applied_on=date(2025, 9, 24),
        accepted_at=ACCEPTED,  # 09-25, 26, 28 (make-up Sunday), 29: four working days
    )
    flags = detect(CAL, facts, CFG)
    assert [f.kind for f in flags] == [FlagKind.late_recorded_application]
    assert "4 working days later" in flags[0].reason
    on_time = OrderFacts(applied_on=date(2025, 9, 26), accepted_at=ACCEPTED)
    assert detect(CAL, on_time, CFG) == []


def test_installation_impossibly_soon_is_flagged() -> None:
    facts = OrderFacts(
        applied_on=date(2025, 9, 29),
        accepted_at=ACCEPTED,
        installed_at=datetime(2025, 9, 29, 9, 20, tzinfo=CHINA_TZ),
    )
    flags = detect(CAL, facts, CFG)
    assert [f.kind for f in flags] == [FlagKind.installed_too_soon]
    assert "installed 20 min after acceptance" in flags[0].reason


def test_callback_irregularities_are_flagged_each_once() -> None:
    facts = OrderFacts(
        applied_on=date(2025, 9, 29),
        accepted_at=ACCEPTED,
        irregularities=[
            Irregularity.asked_to_pay,
            Irregularity.visited_more_than_once,
            Irregularity.asked_to_pay,
        ],
    )
    flags = detect(CAL, facts, CFG)
    assert [f.kind for f in flags] == [FlagKind.callback_irregularity] * 2
    assert {f.reason for f in flags} == {
        "customer says they were asked to pay",
        "customer says the crew came more than once",
    }
