"""How ``fieldops serve --workers N`` runs N uvicorn processes: one listening socket each.

uvicorn's process manager binds one socket in the parent and hands it to every worker. Each
worker's asyncio loop accepts every connection waiting when it wakes, and the worker that is
already running wins each race for the next one: with 16 connections opened together on 2
workers, one worker took all 16 in most bursts (measured: 16/0, 14/2, 16/0, 16/0, 10/6, 10/6 over
six bursts), and in the closed-loop load bench one worker served 69 % of the requests while the
other idled. Accepting one connection per wake-up (nginx's ``multi_accept off``) did not help
(16/0 in four bursts of six): the running worker still wins.

Here each worker binds its own listening socket on the same address with ``SO_REUSEPORT``
(nginx's ``listen … reuseport``), so the kernel spreads new connections over the workers' sockets
by a hash of the client's address and port, whatever each worker is doing (measured: 8/8, 7/9,
6/10, 5/11, 5/11, 6/10). uvicorn's process manager is kept (restarts, signals, health checks); it
is started without a socket, so each worker's server binds one through
:class:`ReusePortEventLoop`, the loop factory given to uvicorn.

``SO_REUSEPORT`` lets another process of the same user bind the port too and take a share of the
connections. Before the workers start, :func:`ensure_port_free` binds the address without it:
that fails while anything listens there, a second ``fieldops serve`` on the same port included,
so two servers never share a port by mistake. One worker (the default) runs as before, on a
plain socket.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

#: uvicorn's ``loop`` option for the workers (an import string of a loop factory).
LOOP_FACTORY = "field_api.serving:ReusePortEventLoop"


class PortTakenError(RuntimeError):
    """The address cannot be listened on (something listens there already)."""


def reuse_port_supported() -> bool:
    """Whether this platform has ``SO_REUSEPORT`` (Linux, the BSDs; not Windows)."""
    return hasattr(socket, "SO_REUSEPORT")


class ReusePortEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop whose servers bound by address use ``SO_REUSEPORT``."""

    async def create_server(
        self, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any
    ) -> asyncio.Server:
        if kwargs.get("sock") is None:
            kwargs["reuse_port"] = True
        return await super().create_server(protocol_factory, host, port, **kwargs)


def ensure_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` without ``SO_REUSEPORT`` (with ``SO_REUSEADDR``, as servers do) and
    let it go: raises :class:`PortTakenError` while anything listens there."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortTakenError(f"cannot resolve {host!r}: {exc}") from exc
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise PortTakenError(
                    f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                ) from exc


def run_workers(app: str, **options: Any) -> None:
    """Serve the ASGI application named by ``app`` in ``options['workers']`` processes, each
    listening on ``options['host']:options['port']`` with its own ``SO_REUSEPORT`` socket.

    ``options`` are :class:`uvicorn.Config`'s. Raises :class:`PortTakenError` when the
    address is taken (before any worker starts)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, loop=LOOP_FACTORY, **options)
    ensure_port_free(config.host, config.port)
    # no socket from the parent: each worker's server binds its own (ReusePortEventLoop)
    Multiprocess(config, sockets=None).run()  # type: ignore[arg-type]


def serve(app: str, **options: Any) -> None:
    """Serve ``app`` as ``fieldops serve`` does: one worker (``options['workers']`` 1 or unset)
    on uvicorn's own plain socket, several through :func:`run_workers` where the platform has
    ``SO_REUSEPORT`` (else uvicorn's shared socket)."""
    import uvicorn

    if options.get("workers", 1) > 1 and reuse_port_supported():
        run_workers(app, **options)
    else:
        uvicorn.run(app, **options)
