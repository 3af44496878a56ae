"""The public tracking page in the customer's language, without a browser: zh-CN by default,
English by Accept-Language, the fo_lang cookie of the pages' switch or the page's own ``?lang=``."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from tests.builders import auth, make_crew, make_order, make_user

CJK = re.compile(r"[\u3400-\u9fff]")


def _tracking_path(client: TestClient, session: Session, settings: Settings) -> str:
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    order = make_order(session, crew=crew)
    session.commit()
    response = client.get(f"/work-orders/{order.id}/tracking", headers=auth(token))
    assert response.status_code == 200, response.text
    return str(response.json()["path"])


def test_the_tracking_page_is_chinese_by_default(
    client: TestClient, session: Session, settings: Settings
) -> None:
    page = client.get(_tracking_path(client, session, settings))
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "用电申请进度" in page.text and "当前状态：" in page.text
    assert "Connection progress" not in page.text
    assert 'href="?lang=en"' in page.text  # the switch to English


def test_the_tracking_page_is_english_on_request_with_chinese_only_in_data(
    client: TestClient, session: Session, settings: Settings
) -> None:
    path = _tracking_path(client, session, settings)
    page = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in page.text
    assert "Connection progress" in page.text
    assert "Current stage: <strong>Accepted</strong>" in page.text
    assert "(China time)" in page.text
    # Chinese only in the data: the masked customer name, the district and the switch back.
    body = page.text.split("<body>", 1)[1]
    for data in ("张*", "测试区", "中文"):
        body = body.replace(data, "")
    assert CJK.findall(body) == []


def test_the_switch_and_the_cookie_choose_over_the_browser(
    client: TestClient, session: Session, settings: Settings
) -> None:
    path = _tracking_path(client, session, settings)
    client.cookies.set("fo_lang", "en")
    assert '<html lang="en">' in client.get(path, headers={"Accept-Language": "zh-CN"}).text
    switched = client.get(path, params={"lang": "zh-CN"}, headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in switched.text
    assert "用电申请进度" in switched.text


def test_an_unknown_link_answers_in_the_language_asked(client: TestClient) -> None:
    english = client.get("/t/" + "B" * 32, headers={"Accept-Language": "en"})
    assert english.status_code == 404
    assert '<html lang="en">' in english.text and "was not found" in english.text
    chinese = client.get("/t/" + "B" * 32)
    assert chinese.status_code == 404
    assert "未找到该进度链接" in chinese.text


def test_any_unknown_link_is_the_not_found_page_not_a_json_error(client: TestClient) -> None:
    for token in ("B" * 5000, "a b", "%00x"):
        page = client.get("/t/" + token, headers={"Accept-Language": "en"})
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert '<html lang="en">' in page.text and 'rel="icon"' in page.text
