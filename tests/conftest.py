"""Shared fixtures: real MariaDB, PostgreSQL and SQLite databases, unique to this test run.

Each run creates its own databases (``etl_t<pid>_<random>_src`` / ``_tgt``) and drops
them at the end, so concurrent runs cannot interfere. A server that is down skips its
tests on a laptop; under ``CI=true`` it fails them instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.helpers.support import Backend, DatabasePair, drop_all_tables

MARIADB_ADMIN = os.environ.get("ETL_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
POSTGRES_ADMIN = os.environ.get(
    "ETL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RUN_TAG = f"etl_t{os.getpid()}_{secrets.token_hex(3)}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a database that is down is a failure)")
    pytest.skip(message)


def _test_databases(
    admin_url: str, what: str, create: str, drop: str, url_of: Callable[[str], str]
) -> Iterator[tuple[str, str]]:
    """Create this run's source and target databases on a server; drop them afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = (f"{RUN_TAG}_src", f"{RUN_TAG}_tgt")
    try:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(create.format(name=name)))
    except Exception as error:
        admin.dispose()
        _unavailable(what, error)
    yield url_of(names[0]), url_of(names[1])
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(drop.format(name=name)))
    admin.dispose()


@pytest.fixture(scope="session")
def mariadb_urls() -> Iterator[tuple[str, str]]:
    """URLs of two fresh MariaDB databases (source, target) for this test run."""
    yield from _test_databases(
        MARIADB_ADMIN,
        "MariaDB at 127.0.0.1:3306",
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
        "DROP DATABASE IF EXISTS `{name}`",
        lambda name: f"{MARIADB_ADMIN.rstrip('/')}/{name}?charset=utf8mb4",
    )


@pytest.fixture(scope="session")
def postgres_urls() -> Iterator[tuple[str, str]]:
    """URLs of two fresh PostgreSQL databases (source, target) for this test run."""
    base = POSTGRES_ADMIN.rsplit("/", 1)[0]
    yield from _test_databases(
        POSTGRES_ADMIN,
        "PostgreSQL at 127.0.0.1:5432",
        'CREATE DATABASE "{name}"',
        'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        lambda name: f"{base}/{name}",
    )


def _urls(
    request: pytest.FixtureRequest,
    backend: Backend,
    role: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    if backend == "sqlite":
        folder = tmp_path_factory.mktemp("sqlite")
        return f"sqlite:///{folder / (role + '.db')}"
    fixture = "mariadb_urls" if backend == "mariadb" else "postgres_urls"
    source, target = request.getfixturevalue(fixture)
    return source if role == "source" else target


PAIRINGS = [
    ("mariadb", "mariadb"),
    ("sqlite", "mariadb"),
    ("postgresql", "mariadb"),
    ("mariadb", "postgresql"),
    ("sqlite", "sqlite"),
    ("postgresql", "postgresql"),
]


def _pair(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    source: Backend,
    target: Backend,
) -> Iterator[DatabasePair]:
    pair = DatabasePair(
        source_backend=source,
        target_backend=target,
        source_url=_urls(request, source, "source", tmp_path_factory),
        target_url=_urls(request, target, "target", tmp_path_factory),
    )
    # Same server for both roles would share one database: make that impossible.
    assert pair.source_url != pair.target_url
    try:
        yield pair
    finally:
        pair.dispose()
        for url in (pair.source_url, pair.target_url):
            drop_all_tables(url)


@pytest.fixture(params=PAIRINGS, ids=[f"{s}-to-{t}" for s, t in PAIRINGS])
def dbs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    """A source and a target database for every pairing that matters; emptied after the test."""
    source, target = request.param
    yield from _pair(request, tmp_path_factory, source, target)


@pytest.fixture
def maria(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    """MariaDB to MariaDB only: for behaviours that do not depend on the pairing."""
    yield from _pair(request, tmp_path_factory, "mariadb", "mariadb")


CROSS_KIND = [("mariadb", "postgresql"), ("postgresql", "mariadb")]


@pytest.fixture(params=CROSS_KIND, ids=[f"{s}-to-{t}" for s, t in CROSS_KIND])
def cross(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    """MariaDB to PostgreSQL and back: for paths only servers of two kinds take."""
    source, target = request.param
    yield from _pair(request, tmp_path_factory, source, target)


@pytest.fixture
def pg_to_maria(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    """PostgreSQL to MariaDB only: for what a PostgreSQL source alone does."""
    yield from _pair(request, tmp_path_factory, "postgresql", "mariadb")


@pytest.fixture
def lite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    """SQLite to SQLite: the embedded default."""
    yield from _pair(request, tmp_path_factory, "sqlite", "sqlite")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped test is a failure: nothing may quietly go untested."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if IN_CI and skipped and exitstatus == 0:
        print(f"\nCI=true: {len(skipped)} test(s) skipped; under CI that is a failure")
        session.exitstatus = 1
