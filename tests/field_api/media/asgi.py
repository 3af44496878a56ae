"""Driving the app at the ASGI level to cut a request body off mid-way."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import FastAPI


@dataclass
class AsgiResult:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def multipart_body(fields: dict[str, str], file_bytes: bytes, *, boundary: str) -> bytes:
    """A multipart/form-data body with the fields first and one file part."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + file_bytes
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def call(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Sequence[bytes],
    *,
    disconnect: bool,
) -> AsgiResult:
    """Send ``chunks`` as the body; then either end it or report the client gone."""
    result = AsgiResult()
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": True} for c in chunks
    ]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    else:
        messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }

    async def main() -> None:
        await app(scope, receive, send)

    anyio.run(main)
    return result


@dataclass
class StreamedResult(AsgiResult):
    """The response, and how many body bytes the app pulled from the client."""

    consumed: int = 0


def call_streaming(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes],
    *,
    stall: bool = False,
) -> StreamedResult:
    """Send a body the app pulls chunk by chunk from ``chunks`` (counting what it took).

    With ``stall`` the client goes quiet after the last chunk instead of ending the body (as a
    terminal whose declared Content-Length is longer than what it sends): ``receive`` then
    waits until the app gives up.
    """
    result = StreamedResult()
    ended = False

    async def receive() -> dict[str, Any]:
        nonlocal ended
        if ended:
            await anyio.sleep_forever()
        chunk = next(chunks, None)
        if chunk is None:
            if stall:
                await anyio.sleep_forever()
            ended = True
            return {"type": "http.request", "body": b"", "more_body": False}
        result.consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }

    async def main() -> None:
        await app(scope, receive, send)

    anyio.run(main)
    return result
