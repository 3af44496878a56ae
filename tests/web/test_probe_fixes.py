"""What a newcomer's walk found in the pages, fixed: finished clocks read as met, step names are
never cut mid-word on a phone (the Pareto chart's labels: tests/web/test_planner.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import _context, _csp_violation
from tests.web.support import LiveServer, signed_in

PHONE_390 = {"width": 390, "height": 844}


def _page(browser: Any, live_server: LiveServer, size: dict[str, int]) -> Any:
    mobile = size["width"] < 600
    context = _context(browser, live_server, viewport=size, is_mobile=mobile, has_touch=mobile)
    return context.new_page()


def in_english(page: Any, live_server: LiveServer, token: str, path: str) -> None:
    """Sign in (the form is Chinese by default), then open ``path`` in English."""
    signed_in(page, token, path)
    page.context.add_cookies([{"name": "fo_lang", "value": "en", "url": live_server.url}])
    page.goto(path)
    page.reload()  # a hash route: load the page again, in English
    page.locator("#sign-out").wait_for(state="visible")


@pytest.fixture
def english_phone(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    page = _page(browser, live_server, PHONE_390)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: _csp_violation(msg, errors))
    yield page
    page.context.close()
    assert errors == []


# Words of each step name drawn on more than one line (cut mid-word) or wider than their box.
CUT_WORDS = """() => [...document.querySelectorAll('#order-steps .step a span:not(.step__n):not(.visually-hidden)')]
  .flatMap(span => {
    const node = span.firstChild;
    if (!node || node.nodeType !== Node.TEXT_NODE) return [];
    const text = node.textContent, cut = [];
    let at = 0;
    for (const word of text.split(' ')) {
      const range = document.createRange();
      range.setStart(node, at); range.setEnd(node, at + word.length);
      const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (lines.size > 1) cut.push(word);
      at += word.length + 1;
    }
    if (span.scrollWidth > span.clientWidth + 1) cut.push('overflow: ' + text);
    return cut;
  })"""


def test_finished_clocks_read_as_met_with_their_day_and_steps_are_not_cut(
    english_phone: Any, live_server: LiveServer
) -> None:
    headers = {"Authorization": f"Bearer {live_server.tokens['crew']}"}
    clocks = httpx.get(f"{live_server.url}/work-orders/3/deadlines", headers=headers).json()
    met = [c for c in clocks["clocks"] if c["status"] == "met"]
    assert met, "the demo's order 3 has a met clock (its supply scheme was answered in time)"
    in_english(english_phone, live_server, live_server.tokens["crew"], "/app/#/order/3")
    items = english_phone.locator("#order-deadlines li.clock")
    expect(items).to_have_count(len(clocks["clocks"]))
    for clock in met:
        row = items.filter(has_text=clock["finished_on"])
        expect(row).to_have_count(1)
        expect(row).to_contain_text(f"Met ({clock['finished_on']})")
        expect(row).not_to_contain_text("Due")
        expect(row).to_have_class("clock clock--met" + (" clock--governing" * clock["governing"]))
    expect(english_phone.locator("#order-steps .step")).to_have_count(6)
    assert english_phone.evaluate(CUT_WORDS) == []
