"""field_api.serving: each worker's own SO_REUSEPORT socket, and the check that nothing else
listens on the port first (the spread over real workers: tests/test_serve_workers.py)."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest

from field_api import serving


def _listening(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen()
    return sock


def test_a_port_something_listens_on_is_refused() -> None:
    with _listening() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(serving.PortTakenError, match=re.escape(f"cannot listen on 127.0.0.1:{port}")):
            serving.ensure_port_free("127.0.0.1", port)


def test_a_free_port_passes_and_is_left_free() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serving.ensure_port_free("127.0.0.1", port)
    with _listening_on(port):  # the check kept nothing bound
        pass


def _listening_on(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_servers_bound_by_address_share_the_port_with_reuseport() -> None:
    async def two_servers() -> list[int]:
        loop = asyncio.get_running_loop()
        first = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = first.sockets[0].getsockname()[1]
        second = await loop.create_server(asyncio.Protocol, "127.0.0.1", port)  # no EADDRINUSE
        flags = [s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                 for server in (first, second) for s in server.sockets]
        for server in (first, second):
            server.close()
            await server.wait_closed()
        return flags

    loop = serving.ReusePortEventLoop()
    try:
        assert all(loop.run_until_complete(two_servers()))
    finally:
        loop.close()


def test_a_server_given_a_socket_keeps_it_as_it_is() -> None:
    async def given() -> int:
        sock = _listening()
        server = await asyncio.get_running_loop().create_server(asyncio.Protocol, sock=sock)
        flag = server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        server.close()
        await server.wait_closed()
        return flag

    loop = serving.ReusePortEventLoop()
    try:
        assert loop.run_until_complete(given()) == 0
    finally:
        loop.close()
