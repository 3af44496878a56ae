"""/openapi.json documents every request body and shows an example of every success answer.

- every operation that takes a body has a ``requestBody`` with a schema for each media type
  (the streamed multipart upload and tus's raw PATCH included); an operation without one is
  named in :data:`NO_BODY` (it takes none), so a new route reading its body by hand fails here;
- every 2xx answer with content has an example, on the media type or on its schema (through
  ``$ref``, array items and every ``anyOf``/``oneOf`` branch);
- every example in the document is valid for the schema it illustrates (JSON Schema 2020-12);
- field_api/api_examples.json names only schemas and operations that exist;
- no description or summary points at internal notes (DOMAIN.md, ARCHITECTURE.md, ../shared).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from field_api.api_doc import EXAMPLES_FILE
from field_api.config import Settings
from field_api.main import create_app

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# Operations that take no body at all: actions named by their path (and tus creation, which
# sends its metadata in headers).
NO_BODY = frozenset(
    {
        "POST /audit/checkpoints",
        "POST /reliability/outages/{outage_id}/approve",
        "POST /jobs/{job_id}/retry",
        "POST /webhooks/deliveries/{delivery_id}/resend",
        "POST /webhooks/subscriptions/{subscription_id}/rotate-secret",
        "POST /admin/tokens/{token_id}/revoke",
        "POST /review-flags/scan",
        "POST /work-orders/{order_id}/contract",
        "POST /work-orders/{order_id}/contract/otp",
        "POST /work-orders/{order_id}/pauses/{pause_id}/end",
        "POST /work-orders/{order_id}/appointments/{visit_id}/cancel",
        "POST /deadlines/recompute-provisional",
        "POST /kit-reservations/{reservation_id}/return",
        "POST /kit-reservations/{reservation_id}/cancel",
        "POST /work-orders/{order_id}/media/uploads",
        "POST /work-orders/{order_id}/tracking/revoke",
        "POST /webhooks/subscriptions/{subscription_id}/deactivate",
    }
)
# Pointers a reader of the API cannot follow (nothing here reads them).
INTERNAL = re.compile(r"DOMAIN\.md|ARCHITECTURE\.md|\.\./shared|shared/design|\bOrder \d+\b")


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("openapi")
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{root}/fieldops.db",
        media_dir=root / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=root / "keys" / "signing.key",
    )
    app = create_app(settings)
    try:
        copy: dict[str, Any] = json.loads(json.dumps(app.openapi()))  # as a client reads it
        return copy
    finally:
        app.state.engine.dispose()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def _schema_has_examples(doc: dict[str, Any], schema: dict[str, Any], seen: frozenset[str]) -> bool:
    if "examples" in schema or "example" in schema:
        return True
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return False
        return _schema_has_examples(doc, doc["components"]["schemas"][name], seen | {name})
    if "items" in schema:
        return _schema_has_examples(doc, schema["items"], seen)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return all(_schema_has_examples(doc, b, seen) for b in branches if b != {"type": "null"})
    return False


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    # the components at the root, so "#/components/schemas/..." resolves as in the document
    root = {"allOf": [schema], "components": doc["components"]}
    return Draft202012Validator(root, format_checker=FormatChecker())


def test_every_operation_that_takes_a_body_documents_it(doc: dict[str, Any]) -> None:
    missing, without_schema = [], []
    for name, operation in _operations(doc):
        body = operation.get("requestBody")
        if body is None:
            if name.split()[0] in ("POST", "PUT", "PATCH") and name not in NO_BODY:
                missing.append(name)
            continue
        assert name not in NO_BODY, f"{name} documents a body: take it off NO_BODY"
        for media_type, content in body["content"].items():
            if not content.get("schema"):
                without_schema.append(f"{name} {media_type}")
    assert missing == []
    assert without_schema == []


def test_the_multipart_upload_and_tus_patch_describe_their_bodies(doc: dict[str, Any]) -> None:
    upload = doc["paths"]["/work-orders/{order_id}/media"]["post"]["requestBody"]
    form = upload["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": form["properties"]["file"]["description"],
    }
    assert {"client_id", "kind", "stage", "scanned_value", "file"} <= set(form["properties"])
    assert form["required"] == ["client_id", "kind", "file"]
    assert form["properties"]["kind"] == {"$ref": "#/components/schemas/MediaKind"}
    assert "MediaKind" in doc["components"]["schemas"]
    patch = doc["paths"]["/media/uploads/{upload_id}"]["patch"]["requestBody"]
    assert patch["content"]["application/offset+octet-stream"]["schema"] == {
        "type": "string",
        "format": "binary",
    }


def test_every_success_answer_has_an_example(doc: dict[str, Any]) -> None:
    without: list[str] = []
    for name, operation in _operations(doc):
        for status, response in operation.get("responses", {}).items():
            if not status.startswith("2"):
                continue
            for media_type, content in response.get("content", {}).items():
                if "example" in content or "examples" in content:
                    continue
                if not _schema_has_examples(doc, content.get("schema", {}), frozenset()):
                    without.append(f"{name} {status} {media_type}")
    # a new response model or route: add its example to field_api/api_examples.json
    assert without == [], "add an example to field_api/api_examples.json or the model"


def test_every_example_is_valid_for_its_schema(doc: dict[str, Any]) -> None:
    checked = 0
    problems: list[str] = []
    for name, schema in doc["components"]["schemas"].items():
        for example in schema.get("examples", []):
            errors = list(_validator(doc, schema).iter_errors(example))
            problems += [f"{name}: {e.message} at {list(e.absolute_path)}" for e in errors]
            checked += 1
    for name, operation in _operations(doc):
        for status, response in operation.get("responses", {}).items():
            for media_type, content in response.get("content", {}).items():
                if "example" in content and media_type.endswith("json"):
                    errors = list(
                        _validator(doc, content["schema"]).iter_errors(content["example"])
                    )
                    problems += [f"{name} {status}: {e.message}" for e in errors]
                    checked += 1
    # a model changed: bring its example in field_api/api_examples.json (or its own) in step
    assert problems == [], "update the examples in field_api/api_examples.json"
    assert checked > 60


def test_an_invalid_example_is_caught(doc: dict[str, Any]) -> None:
    # the check above can fail: a work order whose id is a string is refused
    schema = doc["components"]["schemas"]["WorkOrderRead"]
    example = {**schema["examples"][0], "id": "one"}
    assert list(_validator(doc, schema).iter_errors(example))


def test_the_examples_file_names_only_what_exists(doc: dict[str, Any]) -> None:
    examples = json.loads(Path(EXAMPLES_FILE).read_text(encoding="utf-8"))
    assert set(examples["schemas"]) <= set(doc["components"]["schemas"])
    for key, statuses in examples["responses"].items():
        method, path = key.split(" ", 1)
        operation = doc["paths"][path][method.lower()]
        for status, media_types in statuses.items():
            assert set(media_types) <= set(operation["responses"][status]["content"]), key


def test_descriptions_name_no_internal_notes(doc: dict[str, Any]) -> None:
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                text = value if key in ("description", "summary", "title") else None
                if isinstance(text, str) and INTERNAL.search(text):
                    found.append(f"{where}/{key}: {text[:120]}")
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(doc, "")
    assert found == []
