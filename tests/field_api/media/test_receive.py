"""The streaming multipart reader: any chunking, tricky file bytes, limits, cleanup."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from field_api.common.storage import MediaStore
from field_api.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from field_api.media.receive import ReceivedUpload, receive_multipart

from .asgi import multipart_body

BOUNDARY = "b0undary"
# bytes that look like the start of a delimiter, CRLFs and the boundary without its dashes
TRICKY = b"\r\n-\r\n--b0und\r\n" + b"b0undary" + bytes(range(256)) * 40 + b"\r\n--b0undar"


def _receive(store: MediaStore, body: bytes, chunk: int, *, limit: int = 10**9) -> ReceivedUpload:
    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), chunk):
            yield body[i : i + chunk]

    return asyncio.run(
        receive_multipart(
            f"multipart/form-data; boundary={BOUNDARY}", stream(), store, max_file_bytes=limit
        )
    )


@pytest.mark.parametrize("chunk", [1, 7, 13, 4096, 1 << 20])
def test_file_and_fields_survive_any_chunking(tmp_path: Path, chunk: int) -> None:
    store = MediaStore(tmp_path)
    body = multipart_body({"client_id": "abc", "kind": "site"}, TRICKY, boundary=BOUNDARY)
    got = _receive(store, body, chunk)
    assert got.fields == {"client_id": "abc", "kind": "site"}
    assert got.file.path.read_bytes() == TRICKY
    assert got.file.sha256 == hashlib.sha256(TRICKY).hexdigest()
    assert got.file.head == TRICKY[:64]
    assert got.file_name == "a.jpg"


def test_file_over_the_limit_stops_and_leaves_nothing(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    body = multipart_body({"kind": "site"}, b"x" * 10_000, boundary=BOUNDARY)
    with pytest.raises(PayloadTooLarge):
        _receive(store, body, 1000, limit=5000)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_missing_closing_boundary_is_refused_and_cleaned(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    body = multipart_body({"kind": "site"}, TRICKY, boundary=BOUNDARY)
    with pytest.raises(BadRequest, match="closing boundary"):
        _receive(store, body[:-20], 100)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_body_without_a_file_part_is_refused(tmp_path: Path) -> None:
    body = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nsite\r\n'
    body += f"--{BOUNDARY}--\r\n"
    with pytest.raises(BadRequest, match="no file"):
        _receive(MediaStore(tmp_path), body.encode(), 10)


def test_non_multipart_content_type_is_415(tmp_path: Path) -> None:
    async def stream() -> AsyncIterator[bytes]:
        yield b"{}"

    with pytest.raises(UnsupportedMedia):
        asyncio.run(
            receive_multipart("application/json", stream(), MediaStore(tmp_path), max_file_bytes=1)
        )
