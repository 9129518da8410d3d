"""Running Starlette apps on uvicorn the way the agent, the fake server and the tests all need.

Two things uvicorn's own runner does not give us: binding port 0 and learning the port before serving (we bind
the socket ourselves and hand it over), and leaving signals to the caller (uvicorn re-raises a caught SIGTERM
after shutting down, which would turn a clean stop into death by signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that does not touch signal handlers; its owner decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_stop(self) -> None:
        # A second request stops at once instead of waiting for in-flight responses.
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (0 picks a free port); uvicorn starts listening on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP, and without it
    # Nagle stalls multi-part responses ~40 ms behind the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_host(host: str) -> str:
    """`host` as written inside a URL (IPv6 literals need brackets)."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{url_host(host)}:{port}"


def make_server(
    app: ASGIApp,
    *,
    log_level: str = "info",
    access_log: bool = False,
    graceful_timeout: int | None = 10,
    lifespan: Literal["on", "off"] = "off",
    http: type[asyncio.Protocol] | str = "auto",
) -> EmbeddedServer:
    """`http`: uvicorn's HTTP protocol class or name (the tests of the front's own protocol pass it)."""
    config = uvicorn.Config(
        app,
        http=http,
        log_config=None,  # keep the process's own logging setup
        log_level=log_level,
        access_log=access_log,
        lifespan=lifespan,
        timeout_graceful_shutdown=graceful_timeout,
    )
    return EmbeddedServer(config)


async def wait_started(server: EmbeddedServer, serving: asyncio.Task[None], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if serving.done():
            serving.result()  # surfaces the start-up error
            raise RuntimeError("the server stopped before it started")
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start in time")
        await asyncio.sleep(0.01)


def install_stop_signals(on_signal: Callable[[], None]) -> None:
    """Call `on_signal` on Ctrl-C and SIGTERM (from the running event loop, so it may touch asyncio state)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except NotImplementedError:  # Windows event loops
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(on_signal))
        except (RuntimeError, ValueError):  # not the main thread: signals are not ours to take
            return


async def serve_until_signalled(server: EmbeddedServer, sock: socket.socket) -> None:
    install_stop_signals(server.request_stop)
    await server.serve(sockets=[sock])


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    log_level: str = "warning",
    lifespan: Literal["on", "off"] = "off",
    http: type[asyncio.Protocol] | str = "auto",
) -> Iterator[str]:
    """Serve `app` on a free loopback port from a background thread; yields its base URL (tests, demos).

    lifespan="on" runs the app's startup and shutdown (the gateway's front needs them; the fakes do not)."""
    sock = bind_socket(host, 0)
    url = socket_url(sock)
    server = make_server(app, log_level=log_level, graceful_timeout=2, lifespan=lifespan, http=http)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn {url}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the server for {url} did not start")
        time.sleep(0.005)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_event_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """Run `main` on uvloop when it is installed (a faster loop for every request), else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
