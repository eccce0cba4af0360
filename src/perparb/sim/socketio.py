"""The simulator's Socket.IO side, for venues that speak it (CoinDCX).

A python-socketio server attached to the simulated venue's aiohttp app at ``/socket.io/``.
Each Socket.IO client becomes a simulator client whose connection sends and receives the
same text the venue encoders use: the JSON of one event's argument array,
``["<event>", <argument>]``. Received events go to ``sim_handle`` exactly like websocket
text, so subscriptions, snapshots and drops work unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import socketio

if TYPE_CHECKING:
    from aiohttp import web

    from perparb.sim.server import SimVenue, _Client

_enc = msgspec.json.Encoder()


class SocketIOClientWire:
    """One connected Socket.IO client, seen by the simulator as a text connection."""

    def __init__(self, server: socketio.AsyncServer, sid: str) -> None:
        self.server = server
        self.sid = sid
        self.closed = False

    async def send_str(self, data: str) -> None:
        event, *args = msgspec.json.decode(data)
        await self.server.emit(event, tuple(args) if len(args) > 1 else (args[0] if args else None), to=self.sid)

    async def close(self) -> bool:
        if self.closed:
            return False
        self.closed = True
        await self.server.disconnect(self.sid)
        return True


def attach(app: web.Application, sim: SimVenue, path: str = "socket.io") -> socketio.AsyncServer:
    server = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
    clients: dict[str, _Client] = {}

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        clients[sid] = sim.add_client(SocketIOClientWire(server, sid))

    async def disconnect(sid: str, *_: Any) -> None:
        client = clients.pop(sid, None)
        if client is not None:
            client.ws.closed = True  # type: ignore[misc]
            sim.remove_client(client)

    async def any_event(event: str, sid: str, *args: Any) -> None:
        client = clients.get(sid)
        if client is not None:
            await sim.on_client_text(client, _enc.encode([event, *args]).decode())

    server.on("connect", connect)
    server.on("disconnect", disconnect)
    server.on("*", any_event)
    server.attach(app, socketio_path=path)
    return server
