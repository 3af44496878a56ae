"""Endpoints are "parse -> one service call -> respond": no access check and no query of their own.

Every ``field_api/*/endpoints.py``, ``field_api/web/api.py``, ``devtools.py`` and ``main.py``
(its /healthz and /readyz) is parsed with ``ast``; a call to ``get_for_actor`` (the access
decision belongs to the service of the use case), to ``select`` (a query, or a page of one) or
to a session's ``get``/``execute``/``scalar``/``scalars``/``query`` fails the test, naming the
file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "field_api"
FORBIDDEN_NAMES = frozenset({"get_for_actor", "select"})
SESSION_CALLS = frozenset({"get", "execute", "scalar", "scalars", "query"})


def endpoint_modules() -> list[Path]:
    found = sorted(PACKAGE.glob("*/endpoints.py"))
    return [*found, PACKAGE / "web" / "api.py", PACKAGE / "devtools.py", PACKAGE / "main.py"]


def _is_session(node: ast.expr) -> bool:
    """``session``, ``db``, ``s`` or any name or attribute ending in ``session``."""
    if isinstance(node, ast.Name):
        return node.id.lower().endswith("session") or node.id in {"db", "s"}
    if isinstance(node, ast.Attribute):
        return node.attr.lower().endswith("session")
    return False


def _forbidden_method(func: ast.Attribute) -> bool:
    if func.attr in FORBIDDEN_NAMES:
        return True
    return func.attr in SESSION_CALLS and _is_session(func.value)


def offences(source: str, filename: str) -> list[str]:
    """Where ``source`` calls what an endpoint module must not (``file:line: call``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
            found.append(f"{filename}:{node.lineno}: {func.id}(...)")
        elif isinstance(func, ast.Attribute) and _forbidden_method(func):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(func)}(...)")
    return found


def test_the_modules_are_found() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in endpoint_modules()}
    assert {"work_orders/endpoints.py", "media/endpoints.py", "web/api.py"} <= names
    assert "inspections/endpoints.py" in names
    assert all((PACKAGE / n).is_file() for n in names)


@pytest.mark.parametrize(
    "snippet",
    [
        "orders.get_for_actor(session, 1, user, write=False)",
        "get_for_actor(session, 1, user)",
        "select(WorkOrder)",
        "page.select(session, query)",
        "session.get(WorkOrder, 1)",
        "session.execute(query)",
        "session.scalar(query)",
        "session.scalars(query)",
        "db.query(WorkOrder)",
        "request.state.session.get(WorkOrder, 1)",
    ],
)
def test_a_forbidden_call_is_named_with_its_line(snippet: str) -> None:
    source = f"def endpoint():\n    x = 1\n    return {snippet}\n"
    assert offences(source, "field_api/x/endpoints.py") == [
        f"field_api/x/endpoints.py:3: {snippet.split('(')[0]}(...)"
    ]


def test_service_calls_and_dict_gets_are_allowed() -> None:
    source = (
        "def endpoint():\n"
        "    service.read_for_actor(session, 1, user)\n"
        "    fields.get('kind')\n"
        "    return page.apply(rows)\n"
    )
    assert offences(source, "x.py") == []


@pytest.mark.parametrize(
    "path", endpoint_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix()
)
def test_endpoints_leave_access_and_queries_to_the_services(path: Path) -> None:
    name = path.relative_to(ROOT).as_posix()
    assert offences(path.read_text(encoding="utf-8"), name) == []
