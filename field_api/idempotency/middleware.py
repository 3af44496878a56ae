"""ASGI middleware: body size limits and Idempotency-Key replay.

The same key with the same request replays the stored response (header
``Idempotent-Replayed: true``); the same key with a different request is 409. Keys are scoped
per caller: the scope is an HMAC (``token_pepper``) of the ``Authorization`` header, so the
table cannot test guessed tokens. Streams (multipart uploads, tus PATCH) are not buffered here:
those routes carry their own client ids and limits.

What is stored is only what a replay needs, never a secret (see
:mod:`field_api.idempotency.service`): secret fields of the answer (an API token, a webhook
secret, a tracking token or link) are replayed as ``null`` / ``/t/[redacted]``, and personal
fields (customer name, phone, ID number) come back masked. A replay that differs from the
original answer says so in ``Idempotency-Redacted``: the comma-separated names of the changed
fields, e.g. ``Idempotency-Redacted: token`` for a replayed ``POST /admin/users`` (the user,
with ``"token": null``: the token was shown once; issue a new one if it was lost). A non-JSON
answer is replayed with its status and an empty body (``Idempotency-Redacted: body``).

Records expire ``idempotency_ttl_hours`` after the answer: an expired key executes afresh, and
``service.purge_expired`` deletes them (the server's periodic maintenance, or
``fieldops idempotency purge``). A key whose request is still running answers 409 with
``Retry-After``; when its executor crashed (lease ``idempotency_lease_s`` expired, or its
process on this host is gone) the next retry takes the key over and executes afresh. The lease
is not renewed while the request runs: keep ``idempotency_lease_s`` above the longest JSON
request (proxy timeouts), or a slow request's retry may run it twice. A request that fails with
a 5xx (or an exception) forgets its key, so the retry executes afresh too.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from field_api.db import is_busy_error
from field_api.errors import error_body
from field_api.idempotency import service
from field_api.language import language_of

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STREAMING_TYPES = ("multipart/form-data", "application/offset+octet-stream")


def _error_response(
    status: int,
    error: str,
    code: str,
    detail: str,
    params: dict[str, Any] | None = None,
    *,
    language: str | None = None,
) -> tuple[int, bytes]:
    """The service's four-key error body (``field_api.errors``), ``detail`` in ``language``."""
    body = error_body(error, code, detail, params, language=language)
    return status, json.dumps(body, ensure_ascii=False).encode()


async def _send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        language = language_of(HTTPConnection(scope))
        content_type = headers.get("content-type", "")
        if content_type.startswith(STREAMING_TYPES):
            await self.app(scope, receive, send)
            return
        body = await self._read_body(headers, receive, send, language)
        if body is None:
            return
        replay_receive = _receive_once(body)
        key = headers.get("idempotency-key")
        if not key:
            await self.app(scope, replay_receive, send)
            return
        if len(key) > 200:
            await _send_json(send, *_key_too_long(language), [])
            return
        claimed = await _claim(scope, headers, key, body, send, language)
        if claimed is None or await _answer_claim(send, claimed, language):
            return
        await self._run_and_store(scope, replay_receive, send, claimed)

    async def _read_body(
        self, headers: dict[str, str], receive: Receive, send: Send, language: str
    ) -> bytes | None:
        """The whole request body, or ``None`` once answered 413 (or the client left)."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_json(send, *_too_large(self.max_body_bytes, language), [])
            return None
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_json(send, *_too_large(self.max_body_bytes, language), [])
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _run_and_store(
        self, scope: Scope, receive: Receive, send: Send, claimed: service.Claim
    ) -> None:
        """Run the request under a claimed key; keep its answer, or forget the key on a 5xx."""
        factory: sessionmaker[Session] = scope["app"].state.session_factory
        ttl = timedelta(hours=scope["app"].state.settings.idempotency_ttl_hours)
        captured: dict[str, Any] = {"status": None, "content_type": None, "body": []}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-type":
                        captured["content_type"] = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        def release() -> None:
            with factory.begin() as session:
                service.release(session, claimed)

        try:
            await self.app(scope, receive, capture_send)
        except BaseException:
            await to_thread.run_sync(release)
            raise
        status = captured["status"]
        if status is None or status >= 500:
            await to_thread.run_sync(release)
            return
        body_out = b"".join(captured["body"])

        def keep() -> None:
            with factory.begin() as session:
                service.store(
                    session,
                    claimed,
                    status_code=status,
                    content_type=captured["content_type"],
                    body=body_out,
                    ttl=ttl,
                )

        await to_thread.run_sync(keep)


def _receive_once(body: bytes) -> Receive:
    """A ``receive`` that hands the buffered body to the app once, then empty bodies."""

    async def replay_receive() -> Message:
        nonlocal body
        data, body = body, b""
        return {"type": "http.request", "body": data, "more_body": False}

    return replay_receive


async def _claim(
    scope: Scope, headers: dict[str, str], key: str, body: bytes, send: Send, language: str
) -> service.Claim | None:
    """Look the key up and claim it, or ``None`` once answered 503 (database busy)."""
    settings = scope["app"].state.settings
    pepper: str = settings.token_pepper
    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    lease = timedelta(seconds=settings.idempotency_lease_s)
    key_scope = service.key_scope(headers.get("authorization", ""), pepper=pepper)
    request_hash = service.request_hash(scope["method"], scope["path"], body, pepper=pepper)
    factory: sessionmaker[Session] = scope["app"].state.session_factory

    def claim_key() -> service.Claim:
        with factory.begin() as session:
            return service.claim(
                session,
                scope=key_scope,
                key=key,
                request_hash=request_hash,
                ttl=ttl,
                lease=lease,
            )

    try:
        return await to_thread.run_sync(claim_key)
    except OperationalError as exc:
        if not is_busy_error(exc):
            raise
        # answered here: raised past the routes, it would reach the server's error log
        await _send_json(
            send,
            *_error_response(
                503,
                "ServiceUnavailable",
                "server.busy",
                "the database is busy; retry shortly",
                {"retry_after_s": 1},
                language=language,
            ),
            [(b"retry-after", b"1")],
        )
        return None


async def _answer_claim(send: Send, claimed: service.Claim, language: str) -> bool:
    """Answer a key that must not run (reused, in progress, replay); ``False`` to run it."""
    if claimed.outcome is service.Outcome.conflict:
        await _send_json(
            send,
            *_error_response(
                409,
                "IdempotencyConflict",
                "idempotency.key_reused",
                "this Idempotency-Key was used with a different request",
                language=language,
            ),
            [],
        )
        return True
    if claimed.outcome is service.Outcome.in_progress:
        await _send_json(
            send,
            *_error_response(
                409,
                "IdempotencyConflict",
                "idempotency.in_progress",
                "a request with this key is in progress",
                {"retry_after_s": claimed.retry_after_s},
                language=language,
            ),
            [(b"retry-after", str(claimed.retry_after_s).encode())],
        )
        return True
    if claimed.outcome is service.Outcome.replay:
        await _replay(send, claimed)
        return True
    return False


async def _replay(send: Send, claimed: service.Claim) -> None:
    """Send a stored (redacted) answer back, saying what was redacted."""
    out_headers = [(b"idempotent-replayed", b"true")]
    if claimed.redacted:
        out_headers.append((b"idempotency-redacted", ", ".join(claimed.redacted).encode()))
    if claimed.content_type and claimed.body:
        out_headers.append((b"content-type", claimed.content_type.encode("latin-1")))
    out_headers.append((b"content-length", str(len(claimed.body)).encode()))
    start: Message = {
        "type": "http.response.start",
        "status": claimed.status_code,
        "headers": out_headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": claimed.body})


def _too_large(limit: int, language: str) -> tuple[int, bytes]:
    return _error_response(
        413,
        "PayloadTooLarge",
        "request.too_large",
        f"request body exceeds {limit} bytes",
        {"limit_bytes": limit},
        language=language,
    )


def _key_too_long(language: str) -> tuple[int, bytes]:
    return _error_response(
        400,
        "BadRequest",
        "idempotency.key_too_long",
        "Idempotency-Key too long",
        {"max_length": 200},
        language=language,
    )
