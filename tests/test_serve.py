"""What `make run` does, end to end: migrate, load the demo, serve on 127.0.0.1, answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

FIELDOPS = [sys.executable, "-m", "fieldops.cli"]
CREW_TOKEN = "fo_demo_crew_a_000000000000000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    env = {
        **os.environ,
        "FIELDOPS_DATABASE_URL": f"sqlite:///{tmp_path}/fieldops.db",
        "FIELDOPS_MEDIA_DIR": str(tmp_path / "media"),
    }
    for args in (["db", "upgrade"], ["demo", "load"]):
        done = subprocess.run([*FIELDOPS, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    port = _free_port()
    proc = subprocess.Popen(
        [*FIELDOPS, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:  # wait until the server accepts connections (bounded)
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()


def test_served_with_demo_data(served: str) -> None:
    assert httpx.get(f"{served}/healthz").json() == {"status": "ok"}
    orders = httpx.get(f"{served}/work-orders", headers={"Authorization": f"Bearer {CREW_TOKEN}"})
    assert orders.status_code == 200
    assert len(orders.json()) >= 5
    spec = httpx.get(f"{served}/openapi.json").json()
    assert "/work-orders/{order_id}/transitions" in spec["paths"]
