"""Close a keep-alive connection after a number of requests (nginx's ``keepalive_requests``).

``fieldops serve --workers N`` runs N processes; the kernel gives each new connection to one of
them (each listens on its own ``SO_REUSEPORT`` socket, :mod:`field_api.serving`), and the
connection stays with that process for as long as it is open. Clients that keep a few connections
open for hours (a proxy's upstream pool, a terminal fleet) would pin the load to whichever
processes their connections happened to land on; closing a connection after
``FIELDOPS_KEEPALIVE_REQUESTS`` requests (default 100, the default nginx had for years; 0 keeps
connections open for ever) makes its client reconnect, and the new connection is spread again.
(Before each worker had its own socket, one process took most connections opened together: 78 %
and 22 % of a core with 16 connections on 2 workers.) The answer that ends a connection is a
normal answer with ``Connection: close``; HTTP/1.1 clients reopen the connection for their next
request.

One pure ASGI middleware, installed by ``create_app``. A connection is known by its client's
address and port (unique among open connections); the count of a closed connection is forgotten
when it is reached or pushed out by newer ones (at most :data:`TRACKED` connections per process).
"""

from __future__ import annotations

from collections import OrderedDict

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACKED = 20_000


class KeepAliveLimit:
    """Answer the ``max_requests``-th request of a connection with ``Connection: close``."""

    def __init__(self, app: ASGIApp, *, max_requests: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self._counts: OrderedDict[tuple[str, int], int] = OrderedDict()

    def _last_on_connection(self, scope: Scope) -> bool:
        client = scope.get("client")
        if self.max_requests <= 0 or not client:
            return False
        key = (str(client[0]), int(client[1]))
        count = self._counts.pop(key, 0) + 1
        if count >= self.max_requests:
            return True
        self._counts[key] = count  # most recently used last
        if len(self._counts) > TRACKED:
            self._counts.popitem(last=False)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._last_on_connection(scope):
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, receive, closing)
