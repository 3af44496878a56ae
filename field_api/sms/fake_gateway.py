"""A fake SMS gateway on loopback, for tests, benches and developers.

It speaks the shape of Alibaba Cloud's ``SendSms`` (what :class:`field_api.sms.gateways.
HttpGateway` sends): it VERIFIES each request's RPC signature with the configured secret
(``SignatureDoesNotMatch``, HTTP 400, when it does not match; ``InvalidAccessKeyId.NotFound``
for another key id), records each accepted message, and can be told to fail the next N
requests with an HTTP status or to answer a non-OK ``Code``.

In process: :class:`FakeSmsGateway` (``with FakeSmsGateway() as fake: ... fake.messages()``).
It also refuses what the real service would: another action, another signature version, a
malformed ``Timestamp``, a ``SignatureNonce`` used before (a replay). From another process:
``GET /messages`` answers ``[{"phone", "template", "params",
"sign_name"}]`` (oldest first), ``DELETE /messages`` forgets them, and ``POST /control`` with
``{"fail_next": N, "status": 503}`` or ``{"refuse_next": N, "code": "isv.BUSINESS_LIMIT_CONTROL"}``
scripts failures. ``fieldops sms fake-gateway --port N`` runs one. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from field_api.sms.rules import signature_matches

REQUIRED = ("AccessKeyId", "PhoneNumbers", "SignName", "TemplateCode", "Signature", "Timestamp")
MAX_BODY = 64 * 1024


@dataclass
class _Script:
    fail_next: int = 0
    fail_status: int = 503
    refuse_next: int = 0
    refuse_code: str = "isv.BUSINESS_LIMIT_CONTROL"


@dataclass
class FakeSmsGateway:
    """The fake gateway: ``start()`` (or ``with``) binds 127.0.0.1 on ``port`` (0: a free one)."""

    access_key_id: str = "fake-access-key-id"
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    port: int = 0
    sign_name: str = "供电服务"
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    requests: int = 0
    _script: _Script = field(default_factory=_Script)
    _nonces: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- the Python API ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake gateway is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> FakeSmsGateway:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-sms-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> FakeSmsGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def messages(self) -> list[dict[str, Any]]:
        """What it accepted, oldest first: phone, template (the template id), params, sign_name."""
        with self._lock:
            return [dict(m) for m in self.received]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def fail_next(self, n: int, *, status: int = 503) -> None:
        """Answer the next ``n`` requests with HTTP ``status`` (recording nothing)."""
        with self._lock:
            self._script.fail_next, self._script.fail_status = n, status

    def refuse_next(self, n: int, *, code: str = "isv.BUSINESS_LIMIT_CONTROL") -> None:
        """Answer the next ``n`` requests HTTP 200 with ``{"Code": code}`` (not sent)."""
        with self._lock:
            self._script.refuse_next, self._script.refuse_code = n, code

    def environment(self, *, templates: bool = True) -> dict[str, str]:
        """The ``FIELDOPS_SMS_*`` variables that point the http gateway here."""
        env = {
            "FIELDOPS_SMS_GATEWAY": "http",
            "FIELDOPS_SMS_ENDPOINT": self.url,
            "FIELDOPS_SMS_ACCESS_KEY_ID": self.access_key_id,
            "FIELDOPS_SMS_ACCESS_KEY_SECRET": self.secret,
            "FIELDOPS_SMS_SIGN_NAME": self.sign_name,
        }
        if templates:
            env |= {
                "FIELDOPS_SMS_TEMPLATE_OTP": "SMS_0001",
                "FIELDOPS_SMS_TEMPLATE_PROGRESS": "SMS_0002",
                "FIELDOPS_SMS_TEMPLATE_VISIT": "SMS_0003",
                "FIELDOPS_SMS_TEMPLATE_OUTAGE": "SMS_0004",
            }
        return env

    # -- what the handler calls -------------------------------------------------------------

    def answer(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one ``SendSms`` request."""
        request_id = secrets.token_hex(8)
        with self._lock:
            self.requests += 1
            if self._script.fail_next > 0:
                self._script.fail_next -= 1
                return self._script.fail_status, {"Code": "ServiceUnavailable"}
            missing = [name for name in REQUIRED if not params.get(name)]
            if missing:
                return 400, {"Code": "MissingParameter", "Message": ",".join(missing)}
            if params["AccessKeyId"] != self.access_key_id:
                return 404, {"Code": "InvalidAccessKeyId.NotFound", "RequestId": request_id}
            if params.get("SignatureMethod") != "HMAC-SHA1" or not signature_matches(
                self.secret, method, params
            ):
                self.bad_signatures += 1
                return 400, {"Code": "SignatureDoesNotMatch", "RequestId": request_id}
            refused = _refusal(params, self._nonces)
            if refused is not None:
                return 400, {"Code": refused, "RequestId": request_id}
            self._nonces.add(params.get("SignatureNonce", ""))
            if self._script.refuse_next > 0:
                self._script.refuse_next -= 1
                return 200, {"Code": self._script.refuse_code, "Message": "refused (scripted)"}
            try:
                template_params = json.loads(params.get("TemplateParam") or "{}")
            except ValueError:
                return 400, {"Code": "isv.INVALID_JSON_PARAM", "RequestId": request_id}
            self.received.append(
                {
                    "phone": params["PhoneNumbers"],
                    "template": params["TemplateCode"],
                    "params": template_params,
                    "sign_name": params["SignName"],
                }
            )
        return 200, {"Code": "OK", "Message": "OK", "BizId": request_id, "RequestId": request_id}

    def control(self, body: dict[str, Any]) -> None:
        """``POST /control``: script failures from another process."""
        if "fail_next" in body:
            self.fail_next(int(body["fail_next"]), status=int(body.get("status", 503)))
        if "refuse_next" in body:
            self.refuse_next(int(body["refuse_next"]), code=str(body.get("code", "isv.DENY")))


def _refusal(params: dict[str, str], nonces: set[str]) -> str | None:
    """The error code of a well-signed request the real service would still refuse."""
    if params.get("Action") != "SendSms":
        return "InvalidAction.NotFound"
    if params.get("SignatureVersion") != "1.0":
        return "InvalidSignatureVersion"
    try:
        datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return "InvalidTimeStamp.Format"
    nonce = params.get("SignatureNonce", "")
    if not nonce or nonce in nonces:
        return "SignatureNonceUsed"
    return None


def _handler_for(fake: FakeSmsGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: bodies hold codes
            return

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(min(length, MAX_BODY))

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/messages":
                self._reply(200, fake.messages())
            elif parts.query:
                self._reply(*fake.answer("GET", dict(parse_qsl(parts.query))))
            else:
                self._reply(404, {"Code": "NotFound"})

        def do_DELETE(self) -> None:
            if urlsplit(self.path).path != "/messages":
                self._reply(404, {"Code": "NotFound"})
                return
            fake.clear()
            self._reply(200, [])

        def do_POST(self) -> None:
            body = self._body()
            if urlsplit(self.path).path == "/control":
                try:
                    fake.control(json.loads(body or b"{}"))
                except (ValueError, TypeError):
                    self._reply(400, {"Code": "InvalidControl"})
                    return
                self._reply(200, {"Code": "OK"})
                return
            params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            self._reply(*fake.answer("POST", params))

    return Handler
