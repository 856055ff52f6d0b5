"""What a run does before its first batch: connections, counts, statistics."""

from __future__ import annotations

from sqlalchemy import text

from etl.config import DatabaseSettings
from etl.dialects.mysql_driver import SharedTLSConnection
from etl.engine.db import make_engine


def _tls_context(engine, *, keep):
    connection = engine.connect()
    keep.append(connection)
    connection.execute(text("SELECT 1"))
    return connection.connection.driver_connection.ctx


def test_pymysql_connections_of_a_process_share_one_preferred_tls_context(mariadb_urls):
    """PyMySQL's default (preferred) TLS context is built once, not once per connection."""
    source, target = mariadb_urls
    engines = [make_engine(DatabaseSettings(url=url), "source") for url in (source, target)]
    held: list = []
    try:
        contexts = [_tls_context(engine, keep=held) for engine in engines for _ in range(2)]
        assert len({id(context) for context in contexts}) == 1
    finally:
        for connection in held:
            connection.close()
        for engine in engines:
            engine.dispose()


def test_configured_tls_is_left_to_pymysql():
    """Options of one's own (here: check_hostname) get PyMySQL's own context, not the shared one."""
    bare = SharedTLSConnection.__new__(SharedTLSConnection)  # no server needed to make contexts
    shared = bare._create_ssl_ctx({})
    assert bare._create_ssl_ctx({"check_hostname": False}) is not shared
    assert bare._create_ssl_ctx({}) is shared
