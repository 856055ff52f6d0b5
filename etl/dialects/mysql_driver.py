"""PyMySQL connections that share one TLS context for PyMySQL's default (preferred) mode.

PyMySQL 1.2 tries TLS on every connection unless told otherwise, and builds a fresh
``ssl.create_default_context()`` for each, loading the system's CA certificates
(20-40 ms of CPU a connection) that the preferred mode never checks (no CA: no
verification). A run opens several connections to each side, mostly before its first
batch; built once, the same context serves them all alike. Configured TLS (a CA, a
certificate, a context of one's own) is left to PyMySQL as it is.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

from pymysql.connections import Connection

_lock = threading.Lock()
_preferred: list[ssl.SSLContext] = []


class SharedTLSConnection(Connection):
    """A PyMySQL connection whose preferred-mode TLS context is the process's one."""

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        create = super()._create_ssl_ctx  # type: ignore[misc]  # private in PyMySQL
        if not isinstance(sslp, dict) or sslp:
            context: ssl.SSLContext = create(sslp)
            return context
        with _lock:
            if not _preferred:
                _preferred.append(create(sslp))
            return _preferred[0]


def connect(_dialect: Any, _record: Any, args: Any, kwargs: Any) -> SharedTLSConnection:
    """``pymysql.connect`` with the shared context, as SQLAlchemy's ``do_connect`` hook."""
    return SharedTLSConnection(*args, **kwargs)
