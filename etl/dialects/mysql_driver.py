"""PyMySQL connections: one shared TLS context, and LOAD DATA LOCAL from memory only.

PyMySQL tries TLS on every connection unless told otherwise, and builds a fresh
``ssl.create_default_context()`` for each, loading the system's CA certificates
(20-40 ms of CPU a connection) that the preferred mode never checks (no CA: no
verification). A run opens several connections to each side, mostly before its first
batch; built once, and without the certificates it would never consult, the same
context serves them all alike. Configured TLS (a CA, a certificate, a context of one's
own) is left to PyMySQL as it is.

``LOAD DATA LOCAL`` lets the server ask the client for a file by name, and PyMySQL's
``local_infile`` would open whatever file a server names, at any query. Here the
connection offers the capability but serves only text handed to :func:`load_local`
for that one statement, under a name made for it; any other request gets an empty
file and an error, and no file is ever opened.
"""

from __future__ import annotations

import secrets
import ssl
import threading
from collections.abc import Callable
from typing import Any

from pymysql import err
from pymysql.connections import Connection, MySQLResult
from pymysql.constants import CLIENT, CR

_lock = threading.Lock()
_preferred: list[ssl.SSLContext] = []


def _unverified() -> ssl.SSLContext:
    """PyMySQL's preferred-mode context (no CA given: nothing verified), minus the
    system's CA certificates it loads and never consults: 2 ms instead of 20-40."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3
    return context


class SharedTLSConnection(Connection):
    """A PyMySQL connection whose preferred-mode TLS context is the process's one."""

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        create = super()._create_ssl_ctx  # type: ignore[misc]  # private in PyMySQL
        if not isinstance(sslp, dict) or sslp:
            context: ssl.SSLContext = create(sslp)
            return context
        with _lock:
            if not _preferred:
                _preferred.append(_unverified())
            return _preferred[0]

    local_text: tuple[bytes, bytes] | None = None
    """(name, data) the next LOAD DATA LOCAL may read; None: none may."""

    def _read_query_result(self, unbuffered: bool = False) -> int:
        # PyMySQL's own, with a result that serves only ``local_text``.
        self._result = None
        result = _GuardedResult(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return int(result.affected_rows or 0)


class _GuardedResult(MySQLResult):
    """A query result that answers a LOAD DATA LOCAL request from memory, or refuses it."""

    connection: SharedTLSConnection

    def _read_load_local_packet(self, first_packet: Any) -> None:
        conn = self.connection
        asked = first_packet.get_all_data()[1:]
        offered, conn.local_text = conn.local_text, None
        if offered is not None and secrets.compare_digest(asked, offered[0]):
            data, size = offered[1], min(conn.max_allowed_packet, 16 * 1024)
            for start in range(0, len(data), size):
                conn.write_packet(data[start : start + size])
        conn.write_packet(b"")  # the end of the file (an empty one, if refused)
        ok_packet = conn._read_packet()  # type: ignore[no-untyped-call]  # private in PyMySQL
        if not ok_packet.is_ok_packet():
            raise err.OperationalError(CR.CR_COMMANDS_OUT_OF_SYNC, "Commands Out of Sync")
        self._read_ok_packet(ok_packet)  # type: ignore[attr-defined]  # private in PyMySQL
        if offered is None or asked != offered[0]:
            raise err.OperationalError(
                CR.CR_UNKNOWN_ERROR, "the server asked for a local file this client did not offer"
            )


def load_local(
    connection: SharedTLSConnection, statement: Callable[[str], str], data: bytes
) -> tuple[int, int]:
    """Run ``statement(name)``, a LOAD DATA LOCAL INFILE of file ``name``, reading ``data``.

    Returns the rows the server reports affected and its warning count.
    """
    name = f"etl-{secrets.token_hex(16)}"
    connection.local_text = (name.encode(), data)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement(name))
            return int(cursor.rowcount), int(cursor.warning_count)
    finally:
        connection.local_text = None


def connect(_dialect: Any, _record: Any, args: Any, kwargs: Any) -> SharedTLSConnection:
    """``pymysql.connect`` with the shared context and guarded LOAD DATA LOCAL, as
    SQLAlchemy's ``do_connect`` hook."""
    # The capability only: PyMySQL's own local_infile would arm its reader, which
    # opens any file a server names on any result not built here.
    flags = int(kwargs.get("client_flag", 0)) | CLIENT.LOCAL_FILES
    return SharedTLSConnection(*args, **{**kwargs, "local_infile": False, "client_flag": flags})
