"""The daemon's HTTP endpoint for orchestrators: ``/healthz`` and ``/metrics``.

A stdlib ``ThreadingHTTPServer`` in a daemon thread: a probe must never wait behind a
running sync, and the endpoint needs nothing a web framework would add.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text

from etl.engine.db import describe_error
from etl.errors import ConfigError

log = structlog.get_logger("etl.service.health")

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
"""Returns (healthy, details for the JSON body)."""


class DatabaseProbe:
    """``SELECT 1`` on each database, remembered for a few seconds.

    The engines given should have a short connect timeout: an orchestrator's probe
    times out in seconds, and an unreachable host should read as unreachable, not hang.
    Caching keeps frequent probes from opening connections on busy servers.
    """

    def __init__(
        self,
        engines: Mapping[str, Engine],
        cache_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engines = dict(engines)
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._last: dict[str, dict[str, Any]] = {}

    def check(self) -> dict[str, dict[str, Any]]:
        """Each database's ``{"reachable": bool}`` (with ``error`` when not)."""
        with self._lock:  # one probe at a time; the others reuse its answer
            now = self._monotonic()
            if self._checked_at is None or now - self._checked_at >= self._cache_seconds:
                self._last = {role: _select_one(engine) for role, engine in self._engines.items()}
                self._checked_at = self._monotonic()
            return self._last

    def dispose(self) -> None:
        """Close the probe's pooled connections."""
        for engine in self._engines.values():
            engine.dispose()


def _select_one(engine: Engine) -> dict[str, Any]:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        return {"reachable": False, "error": describe_error(error)}
    return {"reachable": True}


def start_server(
    host: str, port: int, health: HealthCheck, metrics: Callable[[], bytes]
) -> ThreadingHTTPServer:
    """Serve ``/healthz`` and ``/metrics`` on a daemon thread; ConfigError if the port is taken."""
    handler = _handler_class(health, metrics)
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise ConfigError(
            f"[daemon] health endpoint cannot listen on {host}:{port}: {error.strerror}"
        ) from None
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="health-http", daemon=True)
    thread.start()
    log.info("health_listening", host=host, port=server.server_address[1])
    return server


def stop_server(server: ThreadingHTTPServer) -> None:
    """Stop serving and close the socket."""
    server.shutdown()
    server.server_close()


def _handler_class(
    health: HealthCheck, metrics: Callable[[], bytes]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "etl"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                healthy, details = health()
                body = json.dumps(details, sort_keys=True).encode()
                self._send(200 if healthy else 503, "application/json", body)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, metrics())
            else:
                self._send(
                    404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n"
                )

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Probes arrive every few seconds: keep them out of the info log.
            log.debug("http_request", client=self.client_address[0], request=format % args)

    return Handler
