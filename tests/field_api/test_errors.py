"""The error body: four keys on every error, one registry of codes, one OpenAPI schema."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import field_api
from field_api import errors
from field_api.common import i18n
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.contracts.otp import OtpOutcome
from field_api.deps import get_current_user
from field_api.error_codes import LANGUAGES, MESSAGES, placeholders, render
from field_api.errors import ErrorBody
from field_api.main import HTTP_ERROR_CODES
from tests.builders import auth, make_district, make_order, make_user, order_payload

SOURCE = Path(field_api.__file__).parent
CODE_FORMAT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
FOUR_KEYS = {"error", "code", "params", "detail"}


# -- the registry, checked against the source --------------------------------------------------


@dataclass(frozen=True)
class Site:
    where: str
    code: str
    params: frozenset[str] | None  # None: params not a literal dict (not checkable)


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SOURCE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        yield str(path.relative_to(SOURCE.parent)), ast.parse(path.read_text(encoding="utf-8"))


def _param_keys(node: ast.expr | None) -> frozenset[str] | None:
    if node is None:
        return frozenset()
    if isinstance(node, ast.Dict) and all(
        isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys
    ):
        return frozenset(k.value for k in node.keys if isinstance(k, ast.Constant))
    return None


def _domain_names(modules: list[tuple[str, ast.Module]]) -> set[str]:
    """DomainError and every class deriving from it in field_api (by name, to a fixpoint)."""
    names = {"DomainError"}
    classes = [n for _, tree in modules for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    grown = True
    while grown:
        grown = False
        for cls in classes:
            bases = {b.id for b in cls.bases if isinstance(b, ast.Name)}
            if cls.name not in names and bases & names:
                names.add(cls.name)
                grown = True
    return names


def _sites() -> list[Site]:
    """Every code the source sends: ``code=`` keywords, error_body/_error_response calls,
    class defaults."""
    found: list[Site] = []
    for where, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                kw = {k.arg: k.value for k in node.keywords}
                code = kw.get("code")
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    site = Site(f"{where}:{node.lineno}", code.value, _param_keys(kw.get("params")))
                    found.append(site)
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                position = {"error_body": 1, "_error_response": 2}.get(name)
                if position is not None and len(node.args) > position:
                    arg = node.args[position]
                    params = node.args[position + 2] if len(node.args) > position + 2 else None
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found.append(Site(f"{where}:{node.lineno}", arg.value, _param_keys(params)))
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and [t.id for t in stmt.targets if isinstance(t, ast.Name)] == ["code"]
                        and isinstance(stmt.value, ast.Constant)
                        and isinstance(stmt.value.value, str)
                    ):
                        found.append(Site(f"{where}:{stmt.lineno}", stmt.value.value, frozenset()))
    return found


def test_the_source_scan_finds_the_codes() -> None:
    codes = {s.code for s in _sites()}
    assert {
        "work_order.not_found",
        "not_found",
        "request.invalid",
        "idempotency.key_reused",
    } <= codes
    assert len(codes) > 150


def test_every_code_sent_is_registered_in_both_languages() -> None:
    sent = {s.code for s in _sites()}
    sent |= set(HTTP_ERROR_CODES.values()) | {"request.error"}
    sent |= {f"contract.otp_{o.value}" for o in OtpOutcome if o is not OtpOutcome.accepted}
    missing = sorted(sent - MESSAGES.keys())
    assert not missing, f"codes missing from field_api/error_codes.py: {missing}"
    for code, templates in MESSAGES.items():
        assert CODE_FORMAT.match(code), code
        for language in LANGUAGES:
            assert templates.get(language, "").strip(), (code, language)
        assert placeholders(templates["zh-CN"]) == placeholders(templates["en"]), code


def test_every_message_placeholder_is_given_at_each_raise_site() -> None:
    problems = []
    for site in _sites():
        if site.params is None or site.code not in MESSAGES:
            continue
        for language in LANGUAGES:
            needed = placeholders(MESSAGES[site.code][language])
            if not needed <= site.params:
                problems.append(
                    f"{site.where} {site.code} [{language}] lacks {needed - site.params}"
                )
    assert not problems, "\n".join(problems)


def test_every_domain_raise_names_its_code() -> None:
    modules = list(_sources())
    domain = _domain_names(modules)
    # A class with its own __init__ names its code there (e.g. CalendarDataMissingError).
    own_init = {
        n.name
        for _, tree in modules
        for n in ast.walk(tree)
        if isinstance(n, ast.ClassDef)
        and any(isinstance(s, ast.FunctionDef) and s.name == "__init__" for s in n.body)
        and n.name != "DomainError"
    }
    uncoded = []
    for where, tree in modules:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call)
                and isinstance(node.exc.func, ast.Name)
                and node.exc.func.id in domain - own_init
                and not any(k.arg == "code" for k in node.exc.keywords)
            ):
                uncoded.append(f"{where}:{node.lineno} {node.exc.func.id}")
    assert not uncoded, "raises without a code=:\n" + "\n".join(uncoded)


def test_a_message_renders_in_both_languages() -> None:
    params = {"order_id": 42}
    assert render("work_order.not_found", params) == "工单 42 不存在"
    assert render("work_order.not_found", params, "en") == "work order 42 does not exist"
    assert render("no.such_code", {}) == "no.such_code"


def test_domain_errors_default_to_their_class_code() -> None:
    err = errors.NotFound("gone")
    assert err.body() == {"error": "NotFound", "code": "not_found", "params": {}, "detail": "gone"}
    coded = errors.Conflict("x", code="kit.stock_changed", params={"material_code": "M"})
    assert coded.body()["code"] == "kit.stock_changed"
    assert coded.body()["params"] == {"material_code": "M"}
    assert errors.Conflict("y").code == "conflict"  # an instance's code never leaks to the class
    assert coded.body("en")["detail"] == (
        "depot stock of M no longer covers reservation {reservation_id}"
    )
    assert coded.body()["detail"] == "x"  # no language: the raise site's English, for logs


def test_structured_detail_goes_to_params_and_detail_is_rendered() -> None:
    short = errors.OutOfStock(
        {"message": "depot D cannot supply kit K in full", "shortages": [{"material_code": "M"}]},
        code="kit.out_of_stock",
        params={"depot_code": "D", "kit_code": "K"},
    )
    assert short.detail["message"] == "depot D cannot supply kit K in full"  # as raised
    assert short.params["shortages"] == [{"material_code": "M"}]
    assert short.body("en")["detail"] == render("kit.out_of_stock", short.params, "en")
    listed = errors.ValidationFailed(["a: bad", "b: worse"], code="bad_request")
    assert listed.params == {"problems": ["a: bad", "b: worse"]}
    assert listed.detail == ["a: bad", "b: worse"]
    assert listed.body("zh-CN")["detail"] == "请求无效"


# -- the OpenAPI ---------------------------------------------------------------------------


def _needs_user(dependant: Dependant) -> bool:
    return dependant.call is get_current_user or any(_needs_user(d) for d in dependant.dependencies)


def test_openapi_documents_errorbody_on_every_error_response(app: FastAPI) -> None:
    schema = app.openapi()
    components = schema["components"]["schemas"]
    assert set(components["ErrorBody"]["required"]) == FOUR_KEYS
    assert "HTTPValidationError" not in components
    assert "HTTPValidationError" not in str(schema)
    authenticated = {
        (c.path_format, m.lower())
        for c in iter_route_contexts(app.routes)
        if isinstance(c.original_route, APIRoute) and _needs_user(c.original_route.dependant)
        for m in c.methods or ()
    }
    assert len(authenticated) > 40
    operations = 0
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            operations += 1
            errors_documented = {int(s) for s in op["responses"] if int(s) >= 400}
            assert {500, 503} <= errors_documented, (method, path)
            if (path, method) in authenticated or op.get("security"):
                assert {401, 403, 404, 409, 422} <= errors_documented, (method, path)
            for status in errors_documented:
                content = op["responses"][str(status)]["content"]
                # JSON errors are ErrorBody; a page may also answer its error as HTML
                assert set(content) <= {"application/json", "text/html"}, (method, path, status)
                assert content["application/json"] == {
                    "schema": {"$ref": "#/components/schemas/ErrorBody"}
                }, (method, path, status)
    assert operations > 50


# -- real requests -------------------------------------------------------------------------


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= FOUR_KEYS
    ErrorBody.model_validate(body)
    assert body["code"] == code, body
    assert body["code"] in MESSAGES
    return body


@pytest.fixture
def admin(session: Session, settings: Settings) -> str:
    _, token = make_user(session, settings, role=Role.admin)
    session.commit()
    return token


def test_unknown_order_is_404_with_its_code_and_id(client: TestClient, admin: str) -> None:
    body = _error(
        client.get("/work-orders/987654", headers=auth(admin)), 404, "work_order.not_found"
    )
    assert body["error"] == "NotFound"
    assert body["params"] == {"order_id": 987654}
    assert body["detail"] == "工单 987654 不存在"  # zh-CN when the request names no language


def test_detail_is_in_english_by_accept_language(client: TestClient, admin: str) -> None:
    r = client.get(
        "/work-orders/987654", headers={**auth(admin), "Accept-Language": "en-GB,en;q=0.9"}
    )
    body = _error(r, 404, "work_order.not_found")
    assert body["params"] == {"order_id": 987654}
    assert body["detail"] == "work order 987654 does not exist"


def test_detail_follows_the_language_cookie_over_the_header(
    client: TestClient, admin: str
) -> None:
    client.cookies.set("fo_lang", "en")
    r = client.get("/work-orders/987654", headers={**auth(admin), "Accept-Language": "zh-CN"})
    assert _error(r, 404, "work_order.not_found")["detail"] == "work order 987654 does not exist"
    client.cookies.set("fo_lang", "zh-CN")
    r = client.get("/work-orders/987654", headers={**auth(admin), "Accept-Language": "en"})
    assert _error(r, 404, "work_order.not_found")["detail"] == "工单 987654 不存在"


def test_framework_and_middleware_errors_are_rendered_too(
    client: TestClient, admin: str
) -> None:
    en = {"Accept-Language": "en"}
    assert _error(client.put("/healthz", headers=en), 405, "route.method_not_allowed")[
        "detail"
    ] == "method PUT is not allowed here"
    assert _error(client.put("/healthz"), 405, "route.method_not_allowed")[
        "detail"
    ] == "此地址不支持 PUT 方法"
    r = client.post(
        "/admin/districts",
        json={"code": "D1", "name": "d"},
        headers=auth(admin, **{"Idempotency-Key": "k" * 201}),
    )
    assert _error(r, 400, "idempotency.key_too_long")["detail"] == (
        "Idempotency-Key 不能超过 200 个字符"
    )


def test_invalid_body_is_422_request_invalid_listing_the_fields(
    client: TestClient, admin: str, session: Session
) -> None:
    district = make_district(session)
    session.commit()
    payload = order_payload(district)
    payload["capacity_kw"] = "lots"
    del payload["customer_name"]
    body = _error(
        client.post("/work-orders", json=payload, headers=auth(admin)), 422, "request.invalid"
    )
    assert body["error"] == "ValidationFailed"
    fields = body["params"]["errors"]
    assert {tuple(e["loc"]) for e in fields} >= {
        ("body", "capacity_kw"),
        ("body", "customer_name"),
    }
    assert all(set(e) == {"loc", "type", "msg"} for e in fields)
    assert body["detail"].startswith("请求参数无效：")
    assert "capacity_kw（应为数字）" in body["detail"]
    assert "customer_name（缺少）" in body["detail"]
    r = client.post(
        "/work-orders", json=payload, headers={**auth(admin), "Accept-Language": "en"}
    )
    body = _error(r, 422, "request.invalid")
    assert body["params"]["errors"] == fields
    assert body["detail"].startswith("invalid request fields: ")
    assert "capacity_kw (not a number)" in body["detail"]
    assert "customer_name (missing)" in body["detail"]


def test_malformed_json_is_400(client: TestClient, admin: str) -> None:
    r = client.post(
        "/work-orders",
        content=b'{"district_code": ',
        headers={**auth(admin), "Content-Type": "application/json"},
    )
    assert _error(r, 400, "request.malformed_json")["error"] == "BadRequest"


def test_wrong_method_is_405_and_unknown_route_404(client: TestClient) -> None:
    body = _error(client.put("/healthz"), 405, "route.method_not_allowed")
    assert body["params"] == {"method": "PUT"}
    _error(client.get("/no/such/route"), 404, "route.not_found")


def test_illegal_transition_is_409_naming_both_stages(
    client: TestClient, admin: str, session: Session
) -> None:
    order = make_order(session)
    session.commit()
    r = client.post(
        f"/work-orders/{order.id}/transitions", json={"to": "energised"}, headers=auth(admin)
    )
    body = _error(r, 409, "work_order.transition_refused")
    assert body["error"] == "InvalidTransition"
    assert body["params"] == {
        "order_id": order.id,
        "stage": "accepted",
        "target": "energised",
        "allowed": ["surveyed", "whitelisted", "cancelled"],
    }
    # stages are named for people, in the request's language (the params keep the values)
    zh, en = i18n.messages("zh-CN"), i18n.messages("en")
    allowed_zh = "、".join(zh[f"stage.{s}"] for s in ("surveyed", "whitelisted", "cancelled"))
    assert body["detail"] == (
        f"工单 {order.id} 不能从 {zh['stage.accepted']} 转到 {zh['stage.energised']}"
        f"（可转到：{allowed_zh}）"
    )
    r = client.post(
        f"/work-orders/{order.id}/transitions",
        json={"to": "energised"},
        headers={**auth(admin), "Accept-Language": "en"},
    )
    allowed_en = ", ".join(en[f"stage.{s}"] for s in ("surveyed", "whitelisted", "cancelled"))
    assert _error(r, 409, "work_order.transition_refused")["detail"] == (
        f"work order {order.id} cannot move from {en['stage.accepted']} to "
        f"{en['stage.energised']} (allowed: {allowed_en})"
    )


def test_missing_and_unknown_token_are_401(client: TestClient) -> None:
    missing = _error(client.get("/work-orders"), 401, "auth.missing_token")
    assert missing["error"] == "Unauthorized"
    _error(client.get("/work-orders", headers=auth("fo_nonsense")), 401, "auth.unknown_token")


def test_idempotency_key_too_long_is_400_from_the_middleware(
    client: TestClient, admin: str
) -> None:
    r = client.post(
        "/admin/districts",
        json={"code": "D1", "name": "d"},
        headers=auth(admin, **{"Idempotency-Key": "k" * 201}),
    )
    assert _error(r, 400, "idempotency.key_too_long")["params"] == {"max_length": 200}


def test_body_too_large_is_413(client: TestClient, admin: str, settings: Settings) -> None:
    big = b"x" * (settings.max_json_body_bytes + 1)
    r = client.post(
        "/work-orders", content=big, headers={**auth(admin), "Content-Type": "application/json"}
    )
    body = _error(r, 413, "request.too_large")
    assert body["params"] == {"limit_bytes": settings.max_json_body_bytes}


def test_unexpected_exception_is_500_server_internal(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom-for-test", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = _error(client.get("/boom-for-test"), 500, "server.internal")
    assert body == {
        "error": "InternalError",
        "code": "server.internal",
        "params": {},
        "detail": "服务器内部错误",
    }
