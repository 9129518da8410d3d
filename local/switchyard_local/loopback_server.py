"""What the local stack's own HTTP servers share: a serving thread, and no Nagle delay."""

from __future__ import annotations

import socket
import socketserver
import threading


class ServingThread:
    """Runs `server.serve_forever()` on a daemon thread until `stop()`."""

    def __init__(self, server: socketserver.BaseServer, name: str):
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def disable_nagle(connection: socket.socket) -> None:
    """Headers and body go out as separate writes: without this, Nagle holds the body back until the
    client's delayed ACK (40 ms) on a connection that stays open or is reused."""
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
