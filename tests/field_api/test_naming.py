"""One word for one thing across pages, SMS and exports (stage and clock names, district,
the time zone's name, the SMS sender)."""

from __future__ import annotations

from pathlib import Path

import yaml

import field_api.deadlines
from field_api.common import i18n
from field_api.messages import MESSAGES
from field_api.tracking import service as tracking
from field_api.work_orders.rules import Stage


def test_tracking_page_and_sms_use_the_apps_stage_names() -> None:
    zh, en = i18n.messages("zh-CN"), i18n.messages("en")
    for stage in Stage:
        assert tracking.STAGE_LABELS_ZH[stage] == zh[f"stage.{stage.value}"]
        assert en[f"stage.{stage.value}"] != zh[f"stage.{stage.value}"]
    assert tracking.STAGE_LABELS_ZH[Stage.surveyed] == "已现场勘查"


def test_every_clock_has_a_name_in_both_languages() -> None:
    limits = Path(field_api.deadlines.__file__).with_name("time_limits.yaml").read_text("utf-8")
    names = {"end_to_end", "white_list"} | set(_stage_clocks(yaml.safe_load(limits)))
    for name in names:
        assert i18n.text(f"clock.{name}", "zh-CN") != f"clock.{name}", name
        assert i18n.text(f"clock.{name}", "en") != i18n.text(f"clock.{name}"), name
    assert i18n.text("clock.end_to_end", "en") == "End to end"
    assert i18n.text("no.such.key", "en") == "no.such.key"


def test_one_name_for_the_time_zone_and_the_district() -> None:
    english = " ".join(i18n.messages("en").values())
    assert "China time" in english and "Beijing" not in english
    chinese = " ".join(i18n.messages("zh-CN").values())
    chinese += " ".join(m["zh-CN"] for k, m in MESSAGES.items() if k.startswith("csv."))
    assert "供电所" in chinese and "区域" not in chinese


def _stage_clocks(node: object) -> list[str]:
    """The names under every ``stages:`` mapping of the time-limit file."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "stages" and isinstance(value, dict):
                found.extend(str(k) for k in value)
            found.extend(_stage_clocks(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_stage_clocks(value))
    return found
