"""The loopback guard of the Ray engine (the Ray run itself is in test_pipeline.py)."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("psutil")

from vision.detect.distributed import exposed_listeners


def test_a_socket_on_every_interface_is_reported() -> None:
    with socket.socket() as wide, socket.socket() as local:
        wide.bind(("0.0.0.0", 0))
        wide.listen()
        local.bind(("127.0.0.1", 0))
        local.listen()
        wide_port, local_port = wide.getsockname()[1], local.getsockname()[1]

        found = exposed_listeners()

    assert any(item.endswith(f"0.0.0.0:{wide_port}") for item in found)
    assert not any(item.endswith(f":{local_port}") for item in found)
