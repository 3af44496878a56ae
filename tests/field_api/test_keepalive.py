"""A keep-alive connection is closed after FIELDOPS_KEEPALIVE_REQUESTS requests (a real uvicorn)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from field_api.config import Settings
from field_api.main import create_app


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(tmp_path: Path, keepalive_requests: int) -> Iterator[int]:
    settings = Settings(
        env="test", database_url=f"sqlite:///{tmp_path}/fieldops.db", media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789", signing_key_path=tmp_path / "keys" / "signing.key",
        audit_checkpoint_dir=tmp_path / "audit-checkpoints", keepalive_requests=keepalive_requests,
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def server_closing_after_3(tmp_path: Path) -> Iterator[int]:
    yield from _serve(tmp_path, 3)


@pytest.fixture
def server_never_closing(tmp_path: Path) -> Iterator[int]:
    yield from _serve(tmp_path, 0)


def _read(conn: socket.socket) -> bytes:
    data = conn.recv(4096)
    if not data:
        raise ConnectionError("the server closed the connection")
    return data


def _answers(conn: socket.socket, count: int) -> list[bytes]:
    """Send ``count`` keep-alive GET /healthz on ``conn``; the answers' heads, lower-cased."""
    heads: list[bytes] = []
    buffer = b""
    for _ in range(count):
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        while b"\r\n\r\n" not in buffer:
            buffer += _read(conn)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(buffer) < length:
            buffer += _read(conn)
        buffer = buffer[length:]
        heads.append(head.lower())
    return heads


def test_the_third_answer_closes_the_connection(server_closing_after_3: int) -> None:
    with socket.create_connection(("127.0.0.1", server_closing_after_3), timeout=10) as conn:
        heads = _answers(conn, 3)
        assert conn.recv(4096) == b""  # end of stream: the server closed it
    assert [b"connection: close" in h for h in heads] == [False, False, True]
    assert all(h.startswith(b"http/1.1 200") for h in heads)
    with socket.create_connection(("127.0.0.1", server_closing_after_3), timeout=10) as again:
        assert _answers(again, 1)[0].startswith(b"http/1.1 200")  # a new connection is served


def test_zero_keeps_the_connection_open(server_never_closing: int) -> None:
    with socket.create_connection(("127.0.0.1", server_never_closing), timeout=10) as conn:
        heads = _answers(conn, 150)  # past the default 100: one connection answers them all
    assert not any(b"connection: close" in h for h in heads)
