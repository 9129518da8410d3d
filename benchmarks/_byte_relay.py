"""A bare TCP relay: the cheapest process hop a Python relay can be, for scale in sync_latency.py.

    python benchmarks/_byte_relay.py --upstream 127.0.0.1:8001

Listens on 127.0.0.1 (an ephemeral port, printed as `listening on http://127.0.0.1:<port>`), opens one
upstream connection per accepted connection and copies bytes both ways as they arrive, on the same event
loop as the gateway's front and the agent (uvloop) and with asyncio protocols, not streams: no HTTP
parsing, no buffering, no flow control (a benchmark's streams are small). What it adds to a stream's first
token over the upstream's own figure is what one more Python process on the path costs on this machine,
its scheduling included, with no work of its own: the floor under any relay's figure.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvloop


class _Pipe(asyncio.Protocol):
    """One side of a relayed connection: what it receives goes to `peer`'s transport."""

    def __init__(self) -> None:
        # uvloop's TCP transport: it has asyncio.Transport's methods without being a subclass of it.
        self.transport: Any = None
        self.peer: _Pipe | None = None
        self.pending: list[bytes] = []  # received before the other side was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def _serve(upstream_host: str, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()

    def accepted() -> _Pipe:
        client = _Pipe()

        async def connect_upstream() -> None:
            try:
                _, upstream = await loop.create_connection(_Pipe, upstream_host, upstream_port)
            except OSError:
                if client.transport is not None:
                    client.transport.close()
                return
            if client.transport is None or client.transport.is_closing():  # the client left meanwhile
                upstream.transport.close()
                return
            upstream.peer, client.peer = client, upstream
            for side in (client, upstream):  # what either side sent before the two were linked
                for data in side.pending:
                    side.peer.transport.write(data)
                side.pending.clear()

        loop.create_task(connect_upstream())
        return client

    server = await loop.create_server(accepted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="host:port to relay to")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    uvloop.run(_serve(host, int(port)))


if __name__ == "__main__":
    main()
