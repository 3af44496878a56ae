"""The crew app's and planner's pages pick their language like the API: ``?lang=``, then the
language switch's cookie, then the browser's Accept-Language, then zh-CN (no browser needed)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("path", ["/app/", "/app/planner"])
def test_a_page_follows_the_browser_language_unless_the_user_chose(
    client: TestClient, path: str
) -> None:
    assert '<html lang="zh-CN"' in client.get(path).text
    english = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en"' in english.text
    client.cookies.set("fo_lang", "zh-CN")
    chosen = client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="zh-CN"' in chosen.text  # the switch wins over the browser
    asked = client.get(path, params={"lang": "en"}, headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en"' in asked.text  # and ?lang= over both
    client.cookies.clear()
