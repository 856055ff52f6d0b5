"""The type matrix: every column type, edge values, every pairing, exact to the stored value.

One wide table (``tests/helpers/types_table.py``) in the source's own types: a first
load into a missing target and into one the test made, a rerun that writes nothing,
changes that propagate (a JSON reformatting is not one), ``verify`` clean, and the
test's own value-by-value comparison of both sides. Rows a target cannot hold (NUL in
PostgreSQL text, a MySQL TIME beyond a time of day, NaN in MariaDB) are rejected with
their reason and nothing else is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    cast,
    delete,
    insert,
    literal_column,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import mysql

from etl.errors import ConfigError
from etl.job import Job
from tests.helpers.support import Backend, DatabasePair
from tests.helpers.type_runs import engines_of, reasons, run, verify
from tests.helpers.types_table import (
    SOURCE_COLUMNS,
    column_type,
    normalised,
    rejected,
    rows,
    wide_table,
)


@pytest.fixture
def engines(dbs: DatabasePair) -> Iterator[dict[str, Engine]]:
    yield from engines_of(dbs)


def backend(dbs: DatabasePair, role: str) -> Backend:
    return dbs.source_backend if role == "source" else dbs.target_backend


def read(engines: dict[str, Engine], dbs: DatabasePair, role: str) -> dict[int, dict[str, Any]]:
    """Every row of one side, read by the test (not the tool), values normalised."""
    side = backend(dbs, role)
    columns = SOURCE_COLUMNS[dbs.source_backend]
    table = wide_table(side, columns)
    selected: list[Any] = [table.c.id]
    for name in columns:
        column: Any = table.c[name]
        if side == "mariadb" and name == "f32":  # the text protocol prints six digits
            column = (type_coerce(column, Float()) + literal_column("0e0")).label(name)
        elif side == "mariadb" and name == "t":  # the driver's timedelta, not wrapped
            column = type_coerce(column, String()).label(name)
        elif name == "j":  # as text, whatever the column's type
            column = cast(column, Text()).label(name)
        elif side == "mariadb" and name == "f64":
            column = type_coerce(column, mysql.DOUBLE(asdecimal=False)).label(name)
        selected.append(column)
    with engines[role].connect() as connection:
        found = connection.execute(select(*selected)).mappings().all()
    return {
        int(row["id"]): {name: normalised(name, row[name]) for name in columns} for row in found
    }


def expected(dbs: DatabasePair, source_rows: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Ids the target cannot hold, with the start of the reason."""
    reasons = {
        key: rejected(dbs.source_backend, dbs.target_backend, row)
        for key, row in source_rows.items()
    }
    return {key: reason for key, reason in reasons.items() if reason}


def assert_same(engines: dict[str, Engine], dbs: DatabasePair) -> dict[int, str]:
    """The target holds exactly the source's rows but the rejected ones; returns those."""
    source, target = read(engines, dbs, "source"), read(engines, dbs, "target")
    refused = expected(dbs, source)
    assert set(target) == set(source) - set(refused)
    for key, row in target.items():
        for name, value in row.items():
            assert value == source[key][name], (key, name, value, source[key][name])
    return refused


def create_source(dbs: DatabasePair, engines: dict[str, Engine]) -> Table:
    table = wide_table(dbs.source_backend, SOURCE_COLUMNS[dbs.source_backend])
    table.create(engines["source"])
    with engines["source"].begin() as connection:
        connection.execute(insert(table), rows(dbs.source_backend))
    return table


def precreate_target(dbs: DatabasePair, engines: dict[str, Engine]) -> None:
    """The target as a person would make it in that database's own types."""
    table = wide_table(dbs.target_backend, SOURCE_COLUMNS[dbs.source_backend])
    table.create(engines["target"])


@pytest.mark.parametrize(
    ("target_made", "reflected"),
    [(False, False), (True, False), (False, True)],
    ids=["created", "precreated", "reflected"],
)
def test_every_type_arrives_exactly(
    dbs: DatabasePair, engines: dict[str, Engine], target_made: bool, reflected: bool
) -> None:
    """``reflected``: the job's table is what SQLAlchemy reflects from the source (MariaDB's
    JSON a LONGTEXT, its DOUBLE a Decimal-returning type), the target made from that."""
    table = create_source(dbs, engines)
    if target_made:
        precreate_target(dbs, engines)
    definition = Table("types", MetaData(), autoload_with=engines["source"]) if reflected else table
    job = Job(name="types", table=definition)
    total = len(rows(dbs.source_backend))

    first = run(dbs, job)
    assert first.status == "succeeded", first.error
    refused = assert_same(engines, dbs)
    assert first.counts.rejected == len(refused)
    assert first.counts.inserted == total - len(refused)
    found = reasons(engines)
    assert set(found) == set(refused)
    for key, start in refused.items():
        assert start in found[key], (key, found[key])

    again = run(dbs, job)
    assert (again.counts.inserted, again.counts.updated, again.counts.deleted) == (0, 0, 0)
    report = verify(dbs, job)
    assert report.counts == {"missing": len(refused), "extra": 0, "changed": 0}

    change_source(dbs, engines, table)
    changed = run(dbs, job)
    assert changed.status == "succeeded", changed.error
    assert (changed.counts.inserted, changed.counts.updated, changed.counts.deleted) == (1, 2, 1)
    assert_same(engines, dbs)
    quiet = run(dbs, job)
    assert (quiet.counts.inserted, quiet.counts.updated, quiet.counts.deleted) == (0, 0, 0)
    assert verify(dbs, job).counts["changed"] == 0


def change_source(dbs: DatabasePair, engines: dict[str, Engine], table: Table) -> None:
    """Two rows changed in the smallest ways, one deleted, one added; a JSON reformatted."""
    values: dict[str, Any] = {
        "dec": rows(dbs.source_backend)[3]["dec"] + Decimal("0.000001"),
        "f64": 0.1 + 2**-56 * 2,
        "vb": b"\x00\x01",
        "j": {"changed": [1, "😀"]},
    }
    if "f32" in table.c:
        values["f32"] = 0.10000001  # the next 4-byte float after 0.1
    with engines["source"].begin() as connection:
        connection.execute(update(table).where(table.c.id == 4).values(**values))
        connection.execute(update(table).where(table.c.id == 5).values(v="changed 😀"))
        connection.execute(delete(table).where(table.c.id == 6))
        connection.execute(insert(table).values(id=20, v="new", j={"new": True}))
        if dbs.source_backend != "postgresql":  # jsonb keeps no formatting to change
            reformatted = json.dumps(rows(dbs.source_backend)[2]["j"], indent=2, sort_keys=True)
            connection.execute(text("UPDATE types SET j = :j WHERE id = 3"), {"j": reformatted})


def test_a_target_column_of_another_kind_is_refused_up_front(
    dbs: DatabasePair, engines: dict[str, Engine]
) -> None:
    """A JSON source column into an INTEGER target column: one ConfigError line, no rows."""
    table = create_source(dbs, engines)
    target = wide_table(dbs.target_backend, SOURCE_COLUMNS[dbs.source_backend])
    target.c.j.type = column_type(dbs.target_backend, "i64")
    target.create(engines["target"])
    with pytest.raises(ConfigError, match="job types: column j: source type") as raised:
        run(dbs, Job(name="types", table=table))
    assert "\n" not in str(raised.value)
