"""The one-visit stages judged from hand-built evidence snapshots (no database)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from field_api.visits.rules import (
    CheckRecord,
    EvidenceSnapshot,
    FailedItem,
    Gap,
    contract_gaps,
    gaps_by_stage,
    installation_gaps,
    plan_completion,
    scheme_gaps,
    survey_gaps,
)
from field_api.work_orders.rules import Stage

METER = "1100101234567890123456"
LIMIT = 200.0
EARTHING = {"code": "check.above_max", "params": {"value": 7.8, "limit": 4, "unit": "Ω"}}
LABELS = {
    "zh-CN": {"earthing_resistance": "保护接地电阻"},
    "en": {"earthing_resistance": "Protective earthing resistance"},
}
# Everything an energised one-visit order leaves on record.
COMPLETE = EvidenceSnapshot(
    arrival_distance_m=35.0,
    photo_counts={"site": 1, "barcode": 1},
    scheme_kit_code="R1",
    contract="signed",
    kit_issued=True,
    scanned_barcode=METER,
    decoded_barcode=METER,
    issued_meter_barcode=METER,
    checks={"before_energising": CheckRecord(passed=True), "supply_on": CheckRecord(passed=True)},
)


def codes(gaps: Sequence[Gap]) -> list[tuple[str, str]]:
    return [(g.code, g.message_code) for g in gaps]


def test_complete_evidence_has_no_gap_at_any_stage() -> None:
    gaps = gaps_by_stage(COMPLETE, max_arrival_distance_m=LIMIT)
    assert list(gaps) == [
        Stage.surveyed,
        Stage.scheme_answered,
        Stage.contract_signed,
        Stage.installed,
        Stage.inspected,
        Stage.energised,
    ]
    assert all(g == [] for g in gaps.values())
    assert plan_completion(Stage.accepted, gaps).complete


def test_survey_needs_the_arrival_on_site_and_a_site_photo() -> None:
    far = replace(COMPLETE, arrival_distance_m=1107.4, photo_counts={"barcode": 1})
    gaps = survey_gaps(far, max_arrival_distance_m=LIMIT)
    assert codes(gaps) == [
        ("arrival_position", "gap.arrival_position"),
        ("photo_site", "gap.photo_site"),
    ]
    assert gaps[0].params == {"distance_m": 1107, "limit_m": 200}
    assert all(g.stage == Stage.surveyed for g in gaps)
    # Exactly at the limit still counts as on site.
    assert (
        survey_gaps(replace(COMPLETE, arrival_distance_m=LIMIT), max_arrival_distance_m=LIMIT) == []
    )


def test_scheme_gap_when_no_accepted_scheme_names_a_kit() -> None:
    gaps = scheme_gaps(replace(COMPLETE, scheme_kit_code=None))
    assert codes(gaps) == [("scheme", "gap.scheme")]
    assert gaps[0].detail == "no accepted supply scheme for this order"


def test_contract_gap_tells_missing_from_unsigned() -> None:
    assert codes(contract_gaps(replace(COMPLETE, contract="missing"))) == [
        ("contract", "gap.contract_missing")
    ]
    assert codes(contract_gaps(replace(COMPLETE, contract="unsigned"))) == [
        ("contract", "gap.contract_unsigned")
    ]
    assert contract_gaps(COMPLETE) == []


def test_installation_gaps_kit_first_then_the_barcode() -> None:
    bare = replace(COMPLETE, kit_issued=False, scanned_barcode=None, decoded_barcode=None)
    assert [(g.code, g.detail) for g in installation_gaps(bare)] == [
        ("kit_issued", "no kit issued from a depot for this order"),
        ("meter_barcode", "no scanned meter barcode with a photo"),
    ]


def test_barcode_gaps_in_order_of_what_is_wrong() -> None:
    def barcode(
        scanned: str | None = METER, decoded: str | None = METER, issued: str | None = METER
    ) -> list[tuple[str, str, dict[str, Any]]]:
        snap = replace(
            COMPLETE, scanned_barcode=scanned, decoded_barcode=decoded, issued_meter_barcode=issued
        )
        return [(g.code, g.message_code, g.params) for g in installation_gaps(snap)]

    assert barcode(scanned="  ") == [("meter_barcode", "gap.meter_barcode", {})]
    assert barcode(decoded=None) == [("meter_barcode", "gap.meter_barcode_unreadable", {})]
    other = "1100109999999999999999"
    assert barcode(decoded=f" {other} ") == [
        ("meter_barcode", "gap.meter_barcode_differs", {"scanned": METER, "decoded": other})
    ]
    assert barcode(issued=other) == [
        ("meter_barcode", "gap.meter_not_issued", {"scanned": METER, "issued": other})
    ]
    # A kit issued without a recorded meter: the scanned meter is not compared with it.
    assert barcode(issued=None) == []


def test_check_never_submitted_is_missing() -> None:
    gaps = gaps_by_stage(replace(COMPLETE, checks={}), max_arrival_distance_m=LIMIT)
    assert [(g.code, g.params) for g in gaps[Stage.inspected]] == [
        ("check_before_energising", {"phase": "before_energising"})
    ]
    assert [(g.stage, g.code) for g in gaps[Stage.energised]] == [
        (Stage.energised, "check_supply_on")
    ]


def test_failed_check_names_the_critical_items_of_the_last_attempt() -> None:
    failed = CheckRecord(
        attempt=2,
        failed=(
            FailedItem("earthing_resistance", "stored name", EARTHING),
            FailedItem("gone_item", "保护导体", "older English reason"),
        ),
        labels=LABELS,
    )
    snap = replace(COMPLETE, checks={**COMPLETE.checks, "before_energising": failed})
    gaps = gaps_by_stage(snap, max_arrival_distance_m=LIMIT)[Stage.inspected]
    assert [(g.code, g.message_code) for g in gaps] == [
        ("check_before_energising.earthing_resistance", "gap.check_item_failed"),
        ("check_before_energising.gone_item", "gap.check_item_failed"),
    ]
    assert gaps[0].params == {
        "attempt": 2,
        "label": {"zh-CN": "保护接地电阻", "en": "Protective earthing resistance"},
        "reason": EARTHING,
    }
    # An item the card no longer names keeps the name stored with its verdict.
    assert gaps[1].params["label"] == {"zh-CN": "保护导体", "en": "保护导体"}
    assert gaps[1].params["reason"] == "older English reason"


def test_failed_check_without_failed_critical_items_is_the_attempt() -> None:
    snap = replace(
        COMPLETE,
        checks={"before_energising": CheckRecord(attempt=1), "supply_on": CheckRecord(passed=True)},
    )
    gaps = gaps_by_stage(snap, max_arrival_distance_m=LIMIT)
    assert [(g.code, g.message_code, g.params) for g in gaps[Stage.inspected]] == [
        ("check_before_energising", "gap.check_failed", {"attempt": 1})
    ]
    assert gaps[Stage.energised] == []


def test_a_passed_check_has_no_gap_whatever_failed_before() -> None:
    passed = CheckRecord(passed=True, attempt=None)
    snap = replace(COMPLETE, checks={"before_energising": passed, "supply_on": passed})
    assert gaps_by_stage(snap, max_arrival_distance_m=LIMIT)[Stage.inspected] == []


def test_the_walk_stops_at_the_first_stage_with_gaps() -> None:
    snap = replace(COMPLETE, contract="unsigned", kit_issued=False, checks={})
    plan = plan_completion(Stage.accepted, gaps_by_stage(snap, max_arrival_distance_m=LIMIT))
    assert plan.moves == (Stage.surveyed, Stage.scheme_answered)
    assert plan.stopped_at == Stage.contract_signed
    assert [g.message_code for g in plan.missing] == ["gap.contract_unsigned"]
