"""One language at a time: every page a person reads, walked in zh-CN and in English.

A real Chromium walks the crew app (sign in, the list, an order with photo flags, a server
error), the planner dashboard, the inspector page and the public tracking page, and reads
``document.body.innerText`` after each step:

- in zh-CN (the default) no English word may show, except units (kW, m, mm², ...), codes
  (CREW-A, SZ-NS, L-10KV-01: capitals, digits, hyphens), names of formats and of the other
  language (CSV, PDF, English) and data the test knows (ids);
- in English (chosen with the pages' language switch) no Chinese character may show, except
  customer data and other names from the database (customers, addresses, crews, districts,
  users, lines, poles) and the switch back to 中文.

The server's own texts (error ``detail``/``message``, flag reasons) must come in the page's
language too: the pages send it with every call (cookie ``fo_lang`` and Accept-Language).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from field_api.auth.models import Crew, District, User
from field_api.inspections import importing
from field_api.inspections.models import Finding, LedgerAsset, LedgerLine
from field_api.privacy import mask_name, mask_phone
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.field_api.inspections.test_service import write_batch
from tests.web.support import FIXTURES, LiveServer, shot

# A word of two Latin letters or more (a unit or a code is let through by ``_allowed``).
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’]+")
# Chinese characters and the full-width punctuation of Chinese text.
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff5e]+")
UNITS = {"kW", "kWh", "kVA", "kV", "V", "A", "m", "km", "mm", "ms", "Hz", "MΩ", "Ω"}
NAMES = {"CSV", "PDF", "English", "fieldops"}
# A code: capitals, digits and separators (CREW-A, SZ-NS, FT-1, L-10KV-01, P-001, YJV22-4x16).
CODE = re.compile(r"^(?=.*[A-Z0-9])[A-Z0-9][A-Za-z0-9]*(?:[-_./×x][A-Za-z0-9]+)*$")
SEPARATORS = re.compile(r"[\s,;:()（）\[\]<>«»“”\"'·、，。：；！？—–/|#%+=…→←◀▶✓]+")


def _allowed_token(token: str) -> bool:
    """A token of a zh-CN page that is not an English word: a unit, a code, a name, a number."""
    stripped = token.strip(".")
    if not stripped or stripped in UNITS or stripped in NAMES:
        return True
    if any(ch.isdigit() for ch in stripped):
        return True  # ids, measurements, codes with digits (12 m, 3φ, #2, 2026-12-05)
    return bool(CODE.match(stripped)) and stripped.upper() == stripped


def english_words(text: str, data: list[str]) -> list[str]:
    """The English words of ``text`` once ``data`` (ids, names) is taken out."""
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    found: list[str] = []
    for token in SEPARATORS.split(text):
        if LATIN_WORD.search(token) and not _allowed_token(token):
            found.append(token)
    return found


def chinese_text(text: str, data: list[str]) -> list[str]:
    """The Chinese of ``text`` once the customer data and other names from the database are
    taken out (the switch back to 中文 names the other language)."""
    for value in sorted([*data, "中文"], key=len, reverse=True):
        text = text.replace(value, " ")
    return CJK.findall(text)


def visible_text(page: Any) -> str:
    return str(page.evaluate("() => document.body.innerText"))


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The orders, findings and link the walk opens, and the data the pages may show."""
    crew = {"Authorization": f"Bearer {live_server.tokens['crew']}"}
    # An order with a photo that carries neither GPS position nor capture time: flags.
    flagged = live_server.new_order(stage=Stage.contract_signed, name="语言测试甲")
    response = httpx.post(
        f"{live_server.url}/work-orders/{flagged}/media",
        headers=crew,
        data={"client_id": "0b6f4d8e-5c1a-4e8b-9f3d-2a7c1e5b9d40", "kind": "site"},
        files={"file": ("site.jpg", (FIXTURES / "site.jpg").read_bytes(), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    ready = threading.Event()
    for _ in range(600):  # the analysis runs after the answer: wait for its flags (bounded)
        items = httpx.get(f"{live_server.url}/work-orders/{flagged}/media", headers=crew).json()
        if any(item["flags"] for item in items):
            break
        ready.wait(0.05)
    assert any(item["flags"] for item in items), items
    # At "scheme answered" without any scheme: the contract is refused (409).
    no_scheme = live_server.new_order(stage=Stage.scheme_answered, name="语言测试乙")
    # Installed right after acceptance: an off-system flag on the planner dashboard.
    live_server.new_order(stage=Stage.installed, name="语言测试丙")
    link = httpx.get(
        f"{live_server.url}/work-orders/{flagged}/tracking",
        headers={"Authorization": f"Bearer {live_server.tokens['service']}"},
    ).json()
    batch_root: Path = tmp_path_factory.mktemp("inspections")
    with live_server.session_factory.begin() as session:
        importing.import_batch(
            session,
            write_batch(batch_root),
            settings=live_server.settings,
            actor=None,
            confined=False,
        )
    with live_server.session_factory() as session:
        data: list[str] = []
        for name, address, phone_no in session.execute(
            select(WorkOrder.customer_name, WorkOrder.address, WorkOrder.customer_phone)
        ):
            data += [name, address, mask_name(name), mask_phone(phone_no)]
        for model in (District, Crew):
            for code, name in session.execute(select(model.code, model.name)):
                data += [code, name]
        data += list(session.execute(select(User.name)).scalars())
        for model_ in (LedgerLine, LedgerAsset):
            data += [n for n in session.execute(select(model_.name)).scalars() if n]
        # the name of the model that proposed a finding is a name, like a crew's code
        data += [m for m in session.execute(select(Finding.model)).scalars() if m]
    return {
        "flagged": flagged,
        "no_scheme": no_scheme,
        "track_path": link["path"],
        "data": [d for d in data if d],
        "ids": ["det-defect", "det-insulator"],
    }


@pytest.fixture
def lang_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A desktop-sized page whose browser prefers Chinese (the English walk uses the switch)."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        locale="zh-CN",
        base_url=live_server.url,
        service_workers="block",
        geolocation={"latitude": 22.5333, "longitude": 113.9305},
        permissions=["geolocation"],
    )
    context.set_default_timeout(45_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def _sign_in(page: Any, token: str, path: str) -> None:
    """Sign in through the form, whatever language it is in."""
    page.goto(path)
    page.fill("#signin-token", token)
    page.click("#signin-form button[type=submit]")
    page.locator("#sign-out").wait_for(state="visible")


def _walk(page: Any, live_server: LiveServer, world: dict[str, Any], lang: str) -> dict[str, str]:
    """Every view of the walk: its name and the text a person reads there."""
    seen: dict[str, str] = {}

    def read(name: str) -> None:
        seen[name] = visible_text(page)
        shot(page, f"language-{lang}-{name}")

    _sign_in(page, live_server.tokens["crew"], "/app/")
    if lang == "en":
        page.locator("#lang-switch").click()  # sets fo_lang=en for every page
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.locator("#sign-out").wait_for(state="visible")
    expect(page.locator("#orders-list li.order").first).to_be_visible()
    expect(page.locator("#whoami")).not_to_be_empty()
    read("crew-orders")

    page.goto(f"/app/#/order/{world['flagged']}/install")
    expect(page.locator("#order-flags li").first).to_be_visible()
    expect(page.locator('#order-flags li[data-code="gps_missing"]')).to_have_count(1)
    read("crew-order-flags")

    page.goto(f"/app/#/order/{world['no_scheme']}/contract")
    page.locator("#contract-generate").click()
    expect(page.locator("#contract-box .notice--error")).to_be_visible()
    read("crew-contract-error")

    page.evaluate("() => localStorage.clear()")  # sign the crew out; the planner signs in
    _sign_in(page, live_server.tokens["planner"], "/app/planner")
    expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#panel-offsystem li.flag").first).to_be_visible()
    read("planner")

    page.goto("/inspector")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.fill("#token", live_server.tokens["inspector"])
    page.click("#signin")
    expect(page.locator("rect.box.current")).to_have_count(1)
    expect(page.locator('#details dd[data-field="class"]')).not_to_be_empty()
    read("inspector")

    page.goto(world["track_path"])
    expect(page.locator("html")).to_have_attribute("lang", lang)
    read("tracking")
    return seen


def test_every_page_reads_in_chinese_without_english_words(
    lang_page: Any, live_server: LiveServer, world: dict[str, Any]
) -> None:
    seen = _walk(lang_page, live_server, world, "zh-CN")
    # The walk saw what it came for, in Chinese.
    assert "现场班组" in seen["crew-orders"]  # the role, not "(crew)"
    assert "照片无定位" in seen["crew-order-flags"]
    assert "出错了：" in seen["crew-contract-error"]
    assert "计划管理看板" in seen["planner"]
    assert "巡检缺陷复核" in seen["inspector"] and "缺陷" in seen["inspector"]
    assert "用电申请进度" in seen["tracking"]
    data = world["data"] + world["ids"]
    english = {view: words for view, text in seen.items() if (words := english_words(text, data))}
    assert english == {}, f"English words on zh-CN pages: {english}"


def test_every_page_reads_in_english_without_chinese(
    lang_page: Any, live_server: LiveServer, world: dict[str, Any]
) -> None:
    seen = _walk(lang_page, live_server, world, "en")
    assert "(crew)" in seen["crew-orders"]
    assert "Photo without GPS" in seen["crew-order-flags"]
    assert "Error: " in seen["crew-contract-error"]
    assert "Planner dashboard" in seen["planner"]
    assert "Inspection review" in seen["inspector"] and "Defect" in seen["inspector"]
    assert "Connection progress" in seen["tracking"]
    chinese = {
        view: found for view, text in seen.items() if (found := chinese_text(text, world["data"]))
    }
    assert chinese == {}, f"Chinese on English pages (other than customer data): {chinese}"


def test_the_word_checks_catch_what_they_name() -> None:
    data = ["王小明", "深圳市南山区测试路1号", "det-defect"]
    # zh-CN: English words are found; units, codes, numbers and data are not.
    assert english_words("出错了：work order 3 has no accepted supply scheme", data) == [
        "work",
        "order",
        "has",
        "no",
        "accepted",
        "supply",
        "scheme",
    ]
    assert english_words("容量 8 kW · 1φ，CREW-A 南山一班，SZ-NS，下载 CSV，det-defect", data) == []
    assert english_words("当前用户：王小明（crew）", data) == ["crew"]
    # English: Chinese is found unless it is data or the switch back.
    assert chinese_text("Signed in as 王小明 (crew) · 中文", data) == []
    assert chinese_text("Error: 工单 3 没有已确认的供电方案", data) == [
        "工单",
        "没有已确认的供电方案",
    ]


def test_a_page_opened_in_english_gets_english_answers_whatever_the_cookie(
    lang_page: Any, live_server: LiveServer, world: dict[str, Any]
) -> None:
    # The cookie says Chinese (an earlier choice); the page is opened in English.
    lang_page.context.add_cookies([{"name": "fo_lang", "value": "zh-CN", "url": live_server.url}])
    _sign_in(lang_page, live_server.tokens["crew"], "/app/?lang=en")
    expect(lang_page.locator("html")).to_have_attribute("lang", "en")
    lang_page.goto(f"/app/?lang=en#/order/{world['no_scheme']}/contract")
    lang_page.locator("#contract-generate").click()
    error = lang_page.locator("#contract-box .notice--error")
    expect(error).to_contain_text("Error: ")
    text = error.inner_text()
    assert chinese_text(text, world["data"]) == [], text
