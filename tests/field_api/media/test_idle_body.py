"""A real server drops an upload whose client declared a body and stopped sending it.

uvicorn serves the app on a socket this test bound to 127.0.0.1 (a free port); a raw socket
sends an upload's headers, a Content-Length of 2 MiB and only the first part of the body, then
waits. With ``FIELDOPS_MEDIA_BODY_IDLE_TIMEOUT_S`` small, the server must answer 408, close
the connection and leave no temporary file and no row: nothing is held for minutes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from field_api.config import Settings
from field_api.db import make_engine, make_session_factory, read_session
from field_api.media.models import MediaItem

from .support import Crews

DEADLINE_S = 30.0
MIB = 1024 * 1024


def _wait_for(what: str, condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds (a deadline, not a timing assumption)."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.set_inheritable(True)
    yield sock
    sock.close()


def _read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (within the deadline)."""
    received = b""
    sock.settimeout(DEADLINE_S)
    while True:
        data = sock.recv(65536)
        if not data:
            return received
        received += data


@pytest.mark.timeout(90)
def test_an_idle_upload_body_ends_with_408_and_leaves_nothing(
    committed_url: str, tmp_path: Path, listener: socket.socket
) -> None:
    media_dir = tmp_path / "media"
    pepper = "test-pepper-0123456789"
    settings = Settings(
        env="test",
        database_url=committed_url,
        media_dir=media_dir,
        token_pepper=pepper,
        signing_key_path=tmp_path / "keys" / "signing.key",
        audit_checkpoint_dir=tmp_path / "checkpoints",
    )
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with factory() as session:
        crews = Crews(session, settings)
    env = {
        **os.environ,
        "FIELDOPS_ENV": "test",
        "FIELDOPS_DATABASE_URL": committed_url,
        "FIELDOPS_MEDIA_DIR": str(media_dir),
        "FIELDOPS_TOKEN_PEPPER": pepper,
        "FIELDOPS_SIGNING_KEY_PATH": str(tmp_path / "keys" / "signing.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "FIELDOPS_MEDIA_BODY_IDLE_TIMEOUT_S": "0.5",
    }
    log = tmp_path / "server.log"
    fd = listener.fileno()
    host, port = listener.getsockname()[:2]
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "field_api.main:create_app", "--factory",
             "--fd", str(fd), "--no-access-log"],
            env=env, pass_fds=(fd,), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def healthy() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text(errors='replace')}")
            try:
                return httpx.get(f"http://{host}:{port}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for("the server to answer /healthz", healthy)

        boundary = "idle-test-boundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="client_id"\r\n\r\n'
            f"{uuid.uuid4()}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nsite\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"'
            "\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        request = (
            f"POST /work-orders/{crews.order.id}/media HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {crews.token_a}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + 2 * MIB + 64}\r\n\r\n"
        ).encode()
        tmp_dir = media_dir / "tmp"
        with socket.create_connection((host, port), timeout=DEADLINE_S) as sock:
            sock.sendall(request + head + b"\xff\xd8\xff\xe0" + bytes(256 * 1024))
            # the upload got under way: its temporary file was started (the temp folder is
            # made for the first one; the file itself may already be gone when this looks)
            _wait_for("the temporary folder", tmp_dir.is_dir)
            response = _read_response(sock)  # the client sends nothing more
        status_line = response.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 408"), response[:500]
        assert b"media.body_idle_timeout" in response
        assert b"connection: close" in response.lower()
        assert list(tmp_dir.iterdir()) == []
        with read_session(factory) as s:
            assert s.execute(select(func.count()).select_from(MediaItem)).scalar_one() == 0
        # the server still serves others
        assert httpx.get(f"http://{host}:{port}/healthz", timeout=5.0).status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        engine.dispose()
