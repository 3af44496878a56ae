"""Nothing secret at rest outside the tables that own it, and nothing secret in any log.

One run of the real application (TestClient) issues every kind of secret the service hands
out: an API token (``POST /admin/users`` with an Idempotency-Key), work orders carrying a
customer's name, phone and ID number (with Idempotency-Keys, replayed), a one-time signing
code (contract flow, SMS), tracking links (SMS and ``GET …/tracking``), a webhook secret. Then
every row of every table, every captured log line (DEBUG, uvicorn access-log records through
the filter included) and every planner/deadline export is searched for each of them.

Owners — the only tables allowed to hold a kind of value in clear:
- ``work_orders``: the customer's personal data; ``contracts``: the terms the customer signed
  (a legal document, name/phone/ID included);
- ``tracking_tokens``: the tracking token (the page is found by it);
- ``webhook_subscriptions``: the webhook secret (HMAC signing needs it).
API tokens and one-time codes have no owner: only keyed hashes are stored anywhere. The SMS
outbox owns nothing either: a pending message (one is left pending on purpose, its gateway
down) holds its number, code or link only encrypted.

A served instance (``fieldops serve``, real HTTP) checks the access log itself.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import secrets
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session, sessionmaker

from field_api import logs
from field_api.auth.models import District
from field_api.common import clock
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.db import Base, make_engine
from field_api.idempotency.models import IdempotencyRecord
from field_api.sms import gateways as sms_gateways
from field_api.sms.gateways import LoggingGateway, SmsMessage
from field_api.sms.models import SmsOutbox
from field_api.work_orders.rules import Stage
from tests.builders import auth, make_crew, make_order, make_user, order_payload
from tests.field_api.contracts.helpers import signature_png
from tests.field_api.visits.builders import make_scheme
from tests.sms_support import RecordingGateway, SmsInbox

REPO = Path(__file__).resolve().parents[2]

# kind of secret → tables allowed to hold it in clear
OWNERS: dict[str, frozenset[str]] = {
    "api_token": frozenset(),
    "one_time_code": frozenset(),
    "tracking_token": frozenset({"tracking_tokens"}),
    "webhook_secret": frozenset({"webhook_subscriptions"}),
    "personal": frozenset({"work_orders", "contracts"}),
}


@dataclass
class Secrets:
    """Every secret value the run issued, by kind."""

    values: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in OWNERS})

    def add(self, kind: str, value: str) -> None:
        assert value, kind
        self.values[kind].add(value)

    def found_in(self, text: str) -> list[tuple[str, str]]:
        """The (kind, value) pairs present in ``text``."""
        hits = []
        for kind, values in self.values.items():
            for value in values:
                if kind == "one_time_code":
                    # Six digits could sit inside a hex digest or a timestamp by chance: a
                    # code counts only standing alone.
                    pattern = rf"(?<![0-9A-Za-z]){value}(?![0-9A-Za-z])"
                    present = re.search(pattern, text) is not None
                else:
                    present = value in text
                if present:
                    hits.append((kind, value))
        return hits


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return None  # numbers, dates, booleans: no secret is stored as one


def leaks_in_tables(session: Session, found: Secrets) -> list[str]:
    """``table.column: kind`` for every secret held outside its owning tables."""
    session.flush()
    session.expire_all()
    leaks = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(sql_select(table)).mappings():
            for column, value in row.items():
                text = _as_text(value)
                if text is None:
                    continue
                for kind, secret in found.found_in(text):
                    if table.name not in OWNERS[kind]:
                        leaks.append(f"{table.name}.{column}: {kind} {secret[:6]}…")
    return leaks


# The TestClient's own HTTP library logs each URL it requests: the caller's side (the
# customer's phone, the crew's terminal), not the service's log.
CLIENT_LOGGERS = ("httpx2", "httpcore2")


def leaks_in_logs(records: list[logging.LogRecord], found: Secrets) -> list[str]:
    """Every captured record, as its message and as the default format writes it."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    leaks = []
    for record in records:
        if record.name.split(".")[0] in CLIENT_LOGGERS:
            continue
        for text in (record.getMessage(), formatter.format(record)):
            leaks += [f"{record.name}: {kind} {v[:6]}…" for kind, v in found.found_in(text)]
    return leaks


class LoggedRecorder(RecordingGateway):
    """The SMS gateway: keeps each message for the test and logs it like the log gateway."""

    def send(self, message: SmsMessage) -> None:
        super().send(message)
        LoggingGateway().send(message)


@pytest.fixture
def sms(session_factory: sessionmaker[Session], settings: Settings) -> Iterator[SmsInbox]:
    """The customers' phones: reading them runs the queued SMS jobs through the gateway."""
    gateway = LoggedRecorder()
    previous = sms_gateways.install(gateway)
    yield SmsInbox(session_factory, settings, gateway)
    sms_gateways.install(previous)


def _key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": f"{name}-{secrets.token_hex(4)}"}


def _access_line(path: str) -> None:
    """Log an access-log record exactly as uvicorn's h11/httptools protocols do."""
    logger = logging.getLogger("uvicorn.access")
    logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:53211", "GET", path, "1.1", 200)


def test_no_secret_in_any_table_log_or_export(
    client: TestClient,
    session: Session,
    settings: Settings,
    sms: SmsInbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    logs.install()
    found = Secrets()

    crew = make_crew(session)
    district = session.get(District, crew.district_id)
    assert district is not None
    tokens = {}
    for role in (Role.admin, Role.service, Role.planner):
        _, tokens[role] = make_user(session, settings, role=role)
    _, tokens[Role.crew] = make_user(session, settings, role=Role.crew, crew=crew)
    for token in tokens.values():
        found.add("api_token", token)

    # A contract order (built through the services) for the signing flow.
    contract_customer = ("司马相如", "13655554444", "330106197707071236")
    contract_order = make_order(
        session,
        crew=crew,
        stage=Stage.scheme_answered,
        customer_name=contract_customer[0],
        customer_phone=contract_customer[1],
        customer_id_number=contract_customer[2],
    )
    make_scheme(session, contract_order)
    session.commit()
    for value in contract_customer:
        found.add("personal", value)

    # 1. A user created with an Idempotency-Key, the request retried.
    admin = auth(tokens[Role.admin], **_key("user"))
    body = {"name": "赵工", "role": "crew", "crew_code": crew.code}
    created = client.post("/admin/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    new_token = created.json()["token"]
    found.add("api_token", new_token)
    replay = client.post("/admin/users", json=body, headers=admin)
    assert replay.json()["token"] is None and replay.headers["idempotency-redacted"] == "token"
    assert client.get("/me", headers=auth(new_token)).status_code == 200

    # 2. Work orders with customers' data, each retried with its key.
    service_h = auth(tokens[Role.service])
    customers = [
        ("诸葛孔明", "13711112222", "110105198001011237"),
        ("上官婉儿", "+8613922223333", "ID44030119920202"),
    ]
    order_ids = []
    for name, phone, id_number in customers:
        for value in (name, phone, id_number):
            found.add("personal", value)
        payload = order_payload(
            district,
            crew,
            customer_name=name,
            customer_phone=phone,
            customer_id_number=id_number,
        )
        h = service_h | _key("order")
        r = client.post("/work-orders", json=payload, headers=h)
        assert r.status_code == 201, r.text
        order_ids.append(r.json()["id"])
        again = client.post("/work-orders", json=payload, headers=h)
        assert again.json()["id"] == r.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"

    # 3. A webhook subscriber (its secret is shown once).
    sub = client.post(
        "/webhooks/subscriptions",
        json={"name": "crm", "url": "http://127.0.0.1:9/hook", "events": ["stage_changed"]},
        headers=service_h | _key("sub"),
    )
    assert sub.status_code == 201, sub.text
    found.add("webhook_secret", sub.json()["secret"])

    # 4. The contract: generated, code sent by SMS, signed with it (keys on every JSON call).
    crew_h = auth(tokens[Role.crew])
    cid = contract_order.id
    r = client.post(f"/work-orders/{cid}/contract", headers=crew_h | _key("contract"))
    assert r.status_code == 201, r.text
    r = client.post(f"/work-orders/{cid}/contract/otp", headers=crew_h | _key("otp"))
    assert r.status_code == 201, r.text
    code_match = re.search(r"验证码：(\d{6})", sms.sent[-1][1])
    assert code_match is not None
    code = code_match.group(1)
    found.add("one_time_code", code)
    r = client.post(
        f"/work-orders/{cid}/contract/signature",
        headers=crew_h,
        files={"signature": ("sig.png", signature_png(), "image/png")},
        data={"code": code, "lat": "22.5333", "lon": "113.9305"},
    )
    assert r.status_code == 200, r.text

    # 5. Tracking links: asked for, opened, and texted on a stage change.
    for oid in [*order_ids, cid]:
        link = client.get(f"/work-orders/{oid}/tracking", headers=service_h)
        assert link.status_code == 200, link.text
        token = link.json()["token"]
        found.add("tracking_token", token)
        assert client.get(f"/t/{token}").status_code == 200
        assert client.get(f"/track/{token}").status_code == 200
        _access_line(f"/t/{token}")
        _access_line(f"/track/{token}?utm=sms")
    texted = [t for _, t in sms.sent if "/t/" in t]
    # The cancellation's text (a tracking link, the full number) stays pending while the
    # gateway is down: encrypted in the SMS outbox, searched below like every row.
    sms.fail = True
    r = client.post(
        f"/work-orders/{order_ids[1]}/transitions",
        json={"to": "cancelled", "reason": "customer withdrew"},
        headers=service_h | _key("cancel"),
    )
    assert r.status_code == 201, r.text
    sms.deliver()
    pending = session.execute(
        sql_select(SmsOutbox).where(SmsOutbox.state == "pending")
    ).scalars().all()
    assert len(pending) == 1 and pending[0].last_error is not None
    assert pending[0].phone_ct is not None and pending[0].params_ct is not None
    assert texted, sms.sent
    for text in texted:
        link_match = re.search(r"/t/([A-Za-z0-9_\-]+)", text)
        assert link_match is not None
        found.add("tracking_token", link_match.group(1))

    # The run really issued each kind, and the idempotency table was used.
    assert all(found.values[kind] for kind in OWNERS), found.values
    assert session.execute(sql_select(IdempotencyRecord)).first() is not None

    # 6. Exports (JSON and CSV) as a planner sees them.
    planner_h = auth(tokens[Role.planner])
    today = date.today()
    window = {"from": str(today - timedelta(days=400)), "to": str(today + timedelta(days=1))}
    exports = [
        ("/planner/one-visit", window),
        ("/planner/one-visit.csv", window),
        ("/planner/first-pass", window),
        ("/planner/first-pass.csv", window),
        ("/planner/failing-items", window),
        ("/planner/failing-items.csv", window),
        ("/planner/defect-backlog", {"format": "json"}),
        ("/planner/defect-backlog", {"format": "csv"}),
        ("/planner/inspection-coverage", {"format": "json"}),
        ("/planner/inspection-coverage", {"format": "csv"}),
        ("/planner/repair-lead-times", {"format": "json"}),
        ("/planner/repair-lead-times", {"format": "csv"}),
        ("/deadlines/attention", {}),
        ("/deadlines/compliance", window),
        ("/callbacks/due", {}),
        ("/work-orders", {}),
        (f"/work-orders/{cid}/contract", {}),
    ]
    export_leaks = []
    for path, params in exports:
        r = client.get(path, params=params, headers=planner_h)
        assert r.status_code == 200, (path, r.text)
        export_leaks += [f"{path}: {k} {v[:6]}…" for k, v in found.found_in(r.text)]

    # 7. The search.
    assert leaks_in_tables(session, found) == []
    assert leaks_in_logs(caplog.records, found) == []
    assert export_leaks == []
    # The SMS and access lines were logged, in their redacted form.
    assert "SMS to *******4444: " in caplog.text and "验证码：******" in caplog.text
    assert "/t/[redacted]" in caplog.text
    access = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert len(access) == 2 * (len(order_ids) + 1)
    assert all("[redacted]" in r.getMessage() for r in access)


def test_the_search_finds_a_planted_secret(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """The helpers above can fail: a secret put where it must not be is found."""
    found = Secrets()
    token = "fo_" + secrets.token_urlsafe(32)
    tracking_token = secrets.token_urlsafe(24)
    found.add("api_token", token)
    found.add("tracking_token", tracking_token)
    found.add("one_time_code", "048213")
    found.add("personal", "13812340000")
    assert leaks_in_tables(session, found) == []

    session.add(
        IdempotencyRecord(
            scope="s" * 64,
            key="planted",
            request_hash="h" * 64,
            status_code=201,
            content_type="application/json",
            body=json.dumps({"token": token, "phone": "13812340000"}).encode(),
            expires_at=clock.now(),
        )
    )
    leaks = leaks_in_tables(session, found)
    assert sorted(leak.split(":")[1].split()[0] for leak in leaks) == ["api_token", "personal"]
    assert all(leak.startswith("idempotency_records.body") for leak in leaks)

    caplog.set_level(logging.DEBUG)
    logging.getLogger("tests.planted").info("code %s for /t/%s", "048213", tracking_token)
    leaks = leaks_in_logs(caplog.records, found)
    assert len(leaks) == 4  # the code and the token, in the message and in the formatted line
    # A code inside a digest or a longer number is not a hit; standing alone it is.
    assert found.found_in("ab048213cd 10482139") == []
    assert found.found_in("验证码：048213。") == [("one_time_code", "048213")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _read_until(proc: subprocess.Popen[bytes], marker: str, limit_s: float) -> str:
    """Read the server's output until ``marker`` appears (or the process ends / the limit)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        seen += chunk
        if marker.encode() in seen:
            return seen.decode(errors="replace")
    proc.kill()
    raise AssertionError(f"server never printed {marker!r}:\n{seen.decode(errors='replace')}")


def test_served_access_log_shows_the_route_not_the_token(tmp_path: Path) -> None:
    """``fieldops serve`` over real HTTP: uvicorn's access log prints ``/t/[redacted]``."""
    db = tmp_path / "served.db"
    engine = make_engine(f"sqlite:///{db}")
    Base.metadata.create_all(engine)
    engine.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "FIELDOPS_ENV": "development",
        "FIELDOPS_DATABASE_URL": f"sqlite:///{db}",
        "FIELDOPS_MEDIA_DIR": str(tmp_path / "media"),
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from field_api.cli import app; app()",
            "serve",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    token = secrets.token_urlsafe(24)
    try:
        startup = _read_until(proc, "Uvicorn running on", limit_s=60)
        statuses = []
        for path in (f"/t/{token}", f"/track/{token}?token={token}", "/healthz"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            statuses.append(conn.getresponse().status)
            conn.close()
        # Unknown tokens are 404: their lines are logged all the same.
        assert statuses == [404, 404, 200]
        output = startup + _read_until(proc, "/healthz", limit_s=30)
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=30)
    output += rest.decode(errors="replace")
    assert token not in output
    assert '"GET /t/[redacted] HTTP/1.1" 404' in output
    assert '"GET /track/[redacted]?token=[redacted] HTTP/1.1" 404' in output
    assert '"GET /healthz HTTP/1.1" 200' in output
