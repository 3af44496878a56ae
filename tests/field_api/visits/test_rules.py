"""Pure rules of the one-visit completion."""

from __future__ import annotations

import pytest

from field_api.visits.rules import (
    Gap,
    gaps_in,
    is_one_visit,
    plan_completion,
    rate,
    remaining_stages,
)
from field_api.work_orders.rules import Stage

ALL = ["surveyed", "scheme_answered", "contract_signed", "installed", "inspected", "energised"]


def test_all_evidence_moves_from_accepted_to_energised() -> None:
    plan = plan_completion(Stage.accepted, {})
    assert plan.complete
    assert [s.value for s in plan.moves] == ALL


def test_stops_at_the_first_gap_with_all_its_gaps() -> None:
    gaps = {
        Stage.installed: [
            Gap(Stage.installed, "kit_issued", "no kit"),
            Gap(Stage.installed, "meter_barcode", "none"),
        ],
        Stage.energised: [Gap(Stage.energised, "check_supply_on", "not submitted")],
    }
    plan = plan_completion(Stage.surveyed, gaps)
    assert plan.moves == (Stage.scheme_answered, Stage.contract_signed)
    assert plan.stopped_at == Stage.installed
    assert [g.code for g in plan.missing] == ["kit_issued", "meter_barcode"]
    assert not plan.complete


def test_an_energised_order_has_nothing_left() -> None:
    assert remaining_stages(Stage.energised) == ()
    assert plan_completion(Stage.energised, {}).complete


def test_orders_off_the_path_are_refused() -> None:
    with pytest.raises(ValueError, match="not on the one-visit path"):
        plan_completion(Stage.whitelisted, {})


def test_one_visit_needs_a_single_visit_from_acceptance_through_energisation() -> None:
    assert is_one_visit(Stage.accepted, ALL, visits_of_order=1)
    assert not is_one_visit(Stage.accepted, ALL, visits_of_order=2)
    assert not is_one_visit(Stage.surveyed, ALL[1:], visits_of_order=1)
    assert not is_one_visit(Stage.accepted, ALL[:-1], visits_of_order=1)


def test_rate_of_nothing_is_none() -> None:
    assert rate(0, 0) is None
    assert rate(1, 4) == 0.25


def test_gap_as_dict() -> None:
    assert Gap.of(Stage.surveyed, "photo_site", "gap.photo_site").as_dict() == {
        "stage": "surveyed",
        "code": "photo_site",
        "detail": "no photo of kind site for this order",
        "message_code": "gap.photo_site",
        "params": {},
    }


def test_gaps_render_in_the_language_and_old_ones_keep_their_detail() -> None:
    far = Gap.of(Stage.surveyed, "arrival_position", "gap.arrival_position",
                 distance_m=812, limit_m=200)
    old = {"stage": "surveyed", "code": "photo_site", "detail": "no photo"}
    zh = gaps_in([far.as_dict(), old], "zh-CN")
    assert zh[0]["message"] == "到场位置距工单位置 812 米，现场范围最多 200 米"
    assert zh[1]["message"] == "no photo"  # stored before the catalogue: English as it was
    named = Gap.of(Stage.inspected, "check_x.item", "gap.check_item_failed", attempt=2,
                   label={"zh-CN": "保护接地电阻", "en": "Protective earthing resistance"},
                   reason={"code": "check.empty", "params": {}})
    assert gaps_in([named.as_dict()], "en")[0]["message"] == (
        "attempt 2: Protective earthing resistance: empty"
    )
    assert gaps_in([named.as_dict()], "zh-CN")[0]["message"] == "第 2 次检查：保护接地电阻：为空"
    en = gaps_in([far.as_dict()], "en")
    assert en[0]["message"] == far.detail == (
        "the arrival was recorded 812 m from the order's location; at most 200 m counts as "
        "on site"
    )
