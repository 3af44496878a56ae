"""The pages' HTTP side without a browser: language, manifest, service worker, static files."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.work_orders.rules import Stage
from tests.builders import auth, make_crew, make_order, make_user


def test_the_crew_app_is_chinese_by_default_and_english_on_request(client: TestClient) -> None:
    page = client.get("/app/")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "访问令牌" in page.text
    switched = client.get("/app/lang/en?next=/app/planner", follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/app/planner"
    assert "fo_lang=en" in switched.headers["set-cookie"]
    english = client.get("/app/planner")  # the client kept the cookie
    assert '<html lang="en">' in english.text
    assert "Planner dashboard" in english.text


def test_the_language_switch_never_redirects_off_site(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/app/", "/app/\\\\evil"):
        response = client.get("/app/lang/en", params={"next": target}, follow_redirects=False)
        assert response.headers["location"] == "/app/"


def test_the_manifest_makes_the_crew_app_installable(client: TestClient) -> None:
    response = client.get("/app/manifest.webmanifest")
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(response.text)
    assert manifest["start_url"] == "/app/" and manifest["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert client.get(icon["src"]).status_code == 200


def test_the_service_worker_caches_a_shell_that_exists(client: TestClient) -> None:
    response = client.get("/app/sw.js")
    assert response.headers["content-type"].startswith("text/javascript")
    assert "__VERSION__" not in response.text and "__SHELL__" not in response.text
    shell = json.loads(response.text.split("var SHELL = ", 1)[1].split(";\n", 1)[0])
    for path in shell:
        assert client.get(path).status_code == 200, path


def test_static_files_stay_inside_their_folder(client: TestClient) -> None:
    assert client.get("/app/static/vendor/zxing/zxing-library.min.js").status_code == 200
    for path in (
        "/app/static/../endpoints.py",
        "/app/static/%2e%2e/endpoints.py",
        "/app/static/nope.js",
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "NotFound"


def test_the_checklist_card_needs_a_token(client: TestClient) -> None:
    response = client.get("/app/api/work-orders/1/checklist-card")
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"


def test_the_checklist_card_of_an_order_without_a_scheme_is_a_clear_422(
    client: TestClient, session: Session, settings: Settings
) -> None:
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    order = make_order(session, crew=crew, stage=Stage.installed)
    session.commit()
    response = client.get(f"/app/api/work-orders/{order.id}/checklist-card", headers=auth(token))
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationFailed"
    assert response.json()["code"] == "checklist.no_accepted_scheme"
    assert "方案" in response.json()["detail"]  # in the request's language (zh-CN by default)
