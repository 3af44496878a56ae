"""ASGI middleware: body size limits and Idempotency-Key replay.

The same key with the same request replays the stored response; the same key with a different
request is 409. Keys are scoped per bearer token (hashed). Streams (multipart uploads, tus
PATCH) are not buffered here: those routes carry their own client ids and limits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from anyio import to_thread
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from field_api.idempotency.models import IdempotencyRecord

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STREAMING_TYPES = ("multipart/form-data", "application/offset+octet-stream")


def _error_response(status: int, error: str, detail: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": error, "detail": detail}).encode()


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
        content_type = headers.get("content-type", "")
        if content_type.startswith(STREAMING_TYPES):
            await self.app(scope, receive, send)
            return

        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_json(send, *_too_large(self.max_body_bytes), [])
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_json(send, *_too_large(self.max_body_bytes), [])
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)

        async def replay_receive() -> Message:
            nonlocal body
            data, body = body, b""
            return {"type": "http.request", "body": data, "more_body": False}

        key = headers.get("idempotency-key")
        if not key:
            await self.app(scope, replay_receive, send)
            return
        if len(key) > 200:
            await _send_json(
                send, *_error_response(400, "BadRequest", "Idempotency-Key too long"), []
            )
            return
        auth = headers.get("authorization", "")
        key_scope = hashlib.sha256(auth.encode()).hexdigest()
        request_hash = hashlib.sha256(
            scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + body
        ).hexdigest()

        factory: sessionmaker[Session] = scope["app"].state.session_factory
        stored = await to_thread.run_sync(self._claim, factory, key_scope, key, request_hash)
        if stored is not None:
            if stored.request_hash != request_hash:
                await _send_json(
                    send,
                    *_error_response(
                        409,
                        "IdempotencyConflict",
                        "this Idempotency-Key was used with a different request",
                    ),
                    [],
                )
                return
            if stored.status_code is None:
                await _send_json(
                    send,
                    *_error_response(
                        409, "IdempotencyConflict", "a request with this key is in progress"
                    ),
                    [(b"retry-after", b"1")],
                )
                return
            out_headers = [(b"idempotent-replayed", b"true")]
            if stored.content_type:
                out_headers.append((b"content-type", stored.content_type.encode()))
            payload = stored.body or b""
            out_headers.append((b"content-length", str(len(payload)).encode()))
            await send(
                {
                    "type": "http.response.start",
                    "status": stored.status_code,
                    "headers": out_headers,
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return

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

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            await to_thread.run_sync(self._release, factory, key_scope, key)
            raise
        status = captured["status"]
        if status is None or status >= 500:
            await to_thread.run_sync(self._release, factory, key_scope, key)
        else:
            body_out = b"".join(captured["body"])
            await to_thread.run_sync(
                self._store, factory, key_scope, key, status, captured["content_type"], body_out
            )

    def _claim(
        self, factory: sessionmaker[Session], key_scope: str, key: str, request_hash: str
    ) -> IdempotencyRecord | None:
        """Return the stored record, or claim the key (in progress) and return None."""
        with factory() as session:
            existing = session.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == key_scope, IdempotencyRecord.key == key
                )
            ).scalar_one_or_none()
            if existing is not None:
                session.expunge(existing)
                session.rollback()
                return existing
            session.add(IdempotencyRecord(scope=key_scope, key=key, request_hash=request_hash))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                found = session.execute(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.scope == key_scope, IdempotencyRecord.key == key
                    )
                ).scalar_one()
                session.expunge(found)
                return found
            return None

    def _store(
        self,
        factory: sessionmaker[Session],
        key_scope: str,
        key: str,
        status: int,
        content_type: str | None,
        body: bytes,
    ) -> None:
        with factory.begin() as session:
            record = session.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == key_scope, IdempotencyRecord.key == key
                )
            ).scalar_one()
            record.status_code = status
            record.content_type = content_type
            record.body = body

    def _release(self, factory: sessionmaker[Session], key_scope: str, key: str) -> None:
        with factory.begin() as session:
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.scope == key_scope, IdempotencyRecord.key == key
                )
            )


def _too_large(limit: int) -> tuple[int, bytes]:
    return _error_response(413, "PayloadTooLarge", f"request body exceeds {limit} bytes")
