"""What `make run` does, end to end: migrate, load the demo, serve on 127.0.0.1, answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

FIELDOPS = [sys.executable, "-m", "fieldops.cli"]
CREW_TOKEN = "fo_demo_crew_a_000000000000000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("served")
    env = {
        **os.environ,
        "FIELDOPS_DATABASE_URL": f"sqlite:///{tmp_path}/fieldops.db",
        "FIELDOPS_MEDIA_DIR": str(tmp_path / "media"),
    }
    # one month of demo history keeps the start quick (the full load is the CLI tests' business)
    for args in (["db", "upgrade"], ["demo", "load", "--months", "1"]):
        done = subprocess.run([*FIELDOPS, *args], env=env, capture_output=True, text=True, timeout=300)
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


def test_tracking_links_point_at_the_server_that_made_them(served: str) -> None:
    """Without FIELDOPS_PUBLIC_BASE_URL, `fieldops serve` puts its own address in the links."""
    link = httpx.get(
        f"{served}/work-orders/1/tracking", headers={"Authorization": f"Bearer {CREW_TOKEN}"}
    )
    assert link.status_code == 200
    assert link.json()["url"].startswith(f"{served}/t/")
