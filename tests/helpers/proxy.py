"""A TCP proxy in front of a real database server, which a test can cut, freeze and restore.

Cutting closes every open connection and turns new ones away at once (the client sees
"lost connection"); freezing keeps the sockets open but forwards nothing, as a server
does when it loses power or its route: only the client's own timeouts end the wait.
The shared server behind it is never touched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

_POLL = 0.2  # seconds: how soon the threads notice close()


class Proxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; ``cut()``, ``freeze()``, ``restore()``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._state = "up"
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.connections = 0
        self._start(self._accept_loop)

    def cut(self) -> None:
        """Drop every connection now and turn new ones away until ``restore()``."""
        self._state = "cut"
        with self._lock:
            for sock in list(self._sockets):
                _close(sock)
            self._sockets.clear()

    def freeze(self) -> None:
        """Keep connections open but forward nothing, in either direction."""
        self._state = "frozen"

    def restore(self) -> None:
        """Forward again; connections dropped by ``cut()`` stay dropped."""
        self._state = "up"

    def close(self) -> None:
        self._closed.set()
        self.cut()
        _close(self._listener)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if self._state == "cut":
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            self.connections += 1
            with self._lock:
                self._sockets.update((client, server))
            self._start(self._pump, client, server)
            self._start(self._pump, server, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(_POLL)
        while not self._closed.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if self._state == "frozen":
                continue  # swallowed: the peer waits for an answer that never comes
            try:
                sink.sendall(data)
            except OSError:
                break
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
