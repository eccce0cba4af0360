"""Socket.IO as a websocket-like connection, for venues that speak it (CoinDCX).

The runtime drives every connection through ``send``/``recv``/``close``. Here a message in
either direction is the JSON text of one Socket.IO event's argument array,
``["<event>", <argument>, ...]`` — what follows ``42`` in the Socket.IO frame:
``send('["join",{"channelName":"..."}]')`` emits ``join`` with that argument, and ``recv``
returns each event the server emits in the same form, in arrival order. The Socket.IO
library answers Engine.IO pings itself; reconnecting is left to the runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import socketio
from websockets.exceptions import ConnectionClosedError

_enc = msgspec.json.Encoder()


class SocketIOConnection:
    def __init__(self, client: socketio.AsyncClient) -> None:
        self.client = client
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        client.on("*", self._on_event)
        client.on("disconnect", self._on_disconnect)

    async def _on_event(self, event: str, *args: Any) -> None:
        # Runs once per event, in arrival order, with no await before the queue.
        self.queue.put_nowait(_enc.encode([event, *args]).decode())

    async def _on_disconnect(self, *_: Any) -> None:
        self.queue.put_nowait(None)

    async def send(self, message: str) -> None:
        try:
            event, *args = msgspec.json.decode(message)
        except (msgspec.DecodeError, ValueError, TypeError):
            raise ValueError(f"not a Socket.IO event array: {message[:80]!r}") from None
        if not self.client.connected:
            raise ConnectionClosedError(None, None)
        await self.client.emit(event, tuple(args) if len(args) > 1 else (args[0] if args else None))

    async def recv(self, decode: bool | None = None) -> str:
        text = await self.queue.get()
        if text is None:
            self.queue.put_nowait(None)  # every later recv sees the close too
            raise ConnectionClosedError(None, None)
        return text

    async def close(self) -> None:
        await self.client.disconnect()


class SocketIOTransport:
    """Opens Socket.IO connections over the websocket transport only."""

    def __init__(self, path: str = "socket.io", open_timeout: float = 10.0) -> None:
        self.path = path
        self.open_timeout = open_timeout

    @contextlib.asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[SocketIOConnection]:
        client = socketio.AsyncClient(reconnection=False)
        conn = SocketIOConnection(client)
        try:
            await client.connect(url, transports=["websocket"], socketio_path=self.path,
                                 wait_timeout=self.open_timeout)
        except socketio.exceptions.ConnectionError as exc:
            raise ConnectionError(f"Socket.IO connect to {url}: {exc}") from None
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
