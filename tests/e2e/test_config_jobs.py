"""Jobs with no Python, through the real command: ``[jobs.<name>] table`` / ``tables``.

Each test writes a TOML file, creates its source tables with plain SQL and runs
``python -m etl`` as a subprocess against real databases.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from tests.conftest import _pair
from tests.helpers.support import REPO, DatabasePair, one_line_error, python_m_etl

pytestmark = pytest.mark.slow

NO_STUDENTS = "[jobs.students]\nenabled = false\n"

SHOP = (
    NO_STUDENTS
    + """
[jobs.paid]
table = "orders"
target_table = "paid_orders"
where = "status <> 'draft'"
batch_size = 7

[jobs.lines]
table = "order_lines"
key = ["order_id", "line"]
exclude = ["comment"]
"""
)


def etl(
    *args: str, pair: DatabasePair, config: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        python_m_etl(*args, "--config", str(config)),
        env=pair.environ(**env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "etl.toml"
    path.write_text(body)
    return path


def rows(pair: DatabasePair, role: str, sql: str) -> list[tuple[Any, ...]]:
    with pair.engine(role).connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def make_shop(pair: DatabasePair) -> None:
    """orders (primary key id) and order_lines (no primary key) in the source."""
    pair.execute(
        "source",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer VARCHAR(40) NOT NULL, "
        "total FLOAT, status VARCHAR(10))",
    )
    pair.execute(
        "source",
        "CREATE TABLE order_lines (order_id INTEGER NOT NULL, line INTEGER NOT NULL, "
        "sku VARCHAR(20), comment VARCHAR(100))",
    )
    for i in range(1, 41):
        status = "draft" if i % 4 == 0 else "paid"
        pair.execute(
            "source",
            "INSERT INTO orders VALUES (:i, :c, :t, :s)",
            i=i,
            c=f"customer {i}",
            t=i * 1.5,
            s=status,
        )
        pair.execute(
            "source",
            "INSERT INTO order_lines VALUES (:i, 1, :k, 'x'), (:i, 2, :k, 'y')",
            i=i,
            k=f"sku-{i}",
        )


@pytest.fixture(params=["lite", "maria"])
def pair(request: pytest.FixtureRequest) -> DatabasePair:
    """SQLite to SQLite and MariaDB to MariaDB."""
    found: DatabasePair = request.getfixturevalue(request.param)
    return found


@pytest.fixture
def maria_to_pg(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabasePair]:
    yield from _pair(request, tmp_path_factory, "mariadb", "postgresql")


def test_a_configured_table_syncs_with_its_filter_key_and_exclusions(
    tmp_path: Path, pair: DatabasePair
) -> None:
    """No Python: reflected from the source; ``where`` decides which rows the target holds."""
    make_shop(pair)
    path = config(tmp_path, SHOP)
    first = etl("run", pair=pair, config=path)
    assert first.returncode == 0, first.stderr
    assert "paid: succeeded" in first.stdout
    assert "inserted 30," in first.stdout  # 40 orders, 10 drafts left out
    assert "lines: succeeded" in first.stdout
    assert "inserted 80," in first.stdout
    assert "2 of 2 jobs succeeded" in first.stdout
    paid = rows(pair, "target", "SELECT id FROM paid_orders ORDER BY id")
    assert [r[0] for r in paid] == [i for i in range(1, 41) if i % 4]
    target_lines = inspect(pair.engine("target"))
    assert [c["name"] for c in target_lines.get_columns("order_lines")] == [
        "order_id",
        "line",
        "sku",
    ]
    assert target_lines.get_pk_constraint("order_lines")["constrained_columns"] == [
        "order_id",
        "line",
    ]

    # A row that stops matching the filter leaves the target; a change to a kept one lands.
    pair.execute("source", "UPDATE orders SET status = 'draft' WHERE id = 1")
    pair.execute("source", "UPDATE orders SET total = 99.5 WHERE id = 2")
    pair.execute("source", "UPDATE orders SET total = 77.5 WHERE id = 4")  # a draft: unseen
    second = etl("run", "paid", pair=pair, config=path)
    assert second.returncode == 0, second.stderr
    assert "updated 1, deleted 1," in second.stdout
    assert (1,) not in rows(pair, "target", "SELECT id FROM paid_orders")
    assert rows(pair, "target", "SELECT total FROM paid_orders WHERE id = 2") == [(99.5,)]

    verified = etl("verify", pair=pair, config=path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verify paid: no drift; source 29 rows, target 29 rows" in verified.stdout
    again = etl("run", pair=pair, config=path)
    assert again.returncode == 0
    assert "inserted 0, updated 0, deleted 0" in again.stdout


def test_a_configured_mariadb_table_lands_in_postgresql_with_types_it_knows(
    tmp_path: Path, maria_to_pg: DatabasePair
) -> None:
    """MySQL's own types (TINYINT, DOUBLE, DATETIME(6), collations) become generic ones."""
    pair = maria_to_pg
    pair.execute(
        "source",
        "CREATE TABLE gadgets (id INT PRIMARY KEY, "
        "name VARCHAR(30) COLLATE utf8mb4_unicode_ci NOT NULL, flag TINYINT(1), "
        "weight DOUBLE, made DATETIME(6), note TEXT, "
        "twice INT AS (id * 2) VIRTUAL)",
    )
    for i in range(1, 26):
        pair.execute(
            "source",
            "INSERT INTO gadgets (id, name, flag, weight, made, note) "
            "VALUES (:i, :n, :f, :w, :m, :t)",
            i=i,
            n=f"Gadget {i}",
            f=i % 2,
            w=i / 3,
            m=datetime(2024, 1, 1, 12, 0, i, 123456),  # noqa: DTZ001  # DATETIME is naive
            t="long " * i,
        )
    path = config(tmp_path, NO_STUDENTS + '[jobs.gadgets]\ntable = "gadgets"\nwhere = "id > 5"\n')
    first = etl("run", pair=pair, config=path)
    assert first.returncode == 0, first.stderr
    assert "inserted 20," in first.stdout
    columns = {c["name"]: c for c in inspect(pair.engine("target")).get_columns("gadgets")}
    assert list(columns) == ["id", "name", "flag", "weight", "made", "note"]  # twice: generated
    assert rows(pair, "target", "SELECT made, weight FROM gadgets WHERE id = 6") == [
        (datetime(2024, 1, 1, 12, 0, 6, 123456), pytest.approx(2.0))  # noqa: DTZ001
    ]
    again = etl("run", pair=pair, config=path)
    assert again.returncode == 0, again.stderr
    assert "unchanged 20," in again.stdout


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('table = "invoices"', "job 'bad': source table 'invoices' does not exist in sqlite:///"),
        ('table = "notes"', "job 'bad' (table 'notes') has no primary key: set key"),
        (
            'table = "notes"\nkey = ["nope"]',
            "job 'bad' (table 'notes'): key names no column 'nope'",
        ),
        (
            'table = "orders"\ncolumns = ["customer", "colour"]',
            "job 'bad' (table 'orders'): columns names no column 'colour'",
        ),
        ('table = "orders"\nwhere = "no_such_column > 1"', "job 'bad': where 'no_such_column > 1'"),
        ('tables = ["inv*"]', "[jobs.bad] tables: 'inv*' matches no table in the source"),
    ],
)
def test_a_configured_job_that_cannot_work_is_a_one_line_configuration_error(
    tmp_path: Path, lite: DatabasePair, section: str, message: str
) -> None:
    make_shop(lite)
    lite.execute("source", "CREATE TABLE notes (body TEXT)")
    path = config(tmp_path, f"{NO_STUDENTS}[jobs.bad]\n{section}\n")
    result = etl("run", pair=lite, config=path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in one_line_error(result)
    assert inspect(lite.engine("target")).get_table_names() == []


def test_two_jobs_writing_one_target_table_are_refused(tmp_path: Path, lite: DatabasePair) -> None:
    """``tables = ["*"]`` next to the enabled students job would sync students twice."""
    lite.create_source([("A", "B", "C", 1.0)])
    path = config(tmp_path, '[jobs.all]\ntables = ["*"]\n')
    result = etl("run", pair=lite, config=path)
    assert result.returncode == 2
    assert (
        "jobs 'students' and 'all.students' both write target table 'students': disable one"
        in one_line_error(result)
    )
    path.write_text(NO_STUDENTS + '[jobs.all]\ntables = ["*"]\n')
    alone = etl("run", pair=lite, config=path)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.startswith("all.students: succeeded")


def test_jobs_lists_python_and_configured_jobs_expanded(tmp_path: Path, lite: DatabasePair) -> None:
    make_shop(lite)
    path = config(
        tmp_path,
        NO_STUDENTS
        + '[jobs.shop]\ntables = ["order*"]\n'
        + '[jobs.paid]\ntable = "orders"\ntarget_table = "paid"\ninterval = 60\n',
    )
    # order_lines has no primary key and no section of its own giving one: refused.
    refused = etl("jobs", pair=lite, config=path)
    assert refused.returncode == 2
    assert "job 'shop.order_lines' (table 'order_lines') has no primary key" in refused.stderr
    path.write_text(path.read_text().replace('["order*"]', '["orders"]'))
    listing = etl("jobs", pair=lite, config=path)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:4] == ["JOB", "ENABLED", "TABLE", "KEY"]
    by_job = {line.split()[0]: line for line in lines[1:]}
    assert set(by_job) == {"students", "shop.orders", "paid"}
    assert by_job["students"].split()[1] == "no"
    assert "orders > paid  id" in by_job["paid"]
    assert "every 60s" in by_job["paid"]
    assert "cron '*/15 * * * *' (UTC)" in by_job["shop.orders"]


def test_many_tables_run_concurrently_and_one_failure_fails_only_itself(
    tmp_path: Path, maria: DatabasePair
) -> None:
    """20 tables, ``tables = ["*"]``, 4 workers; t07's target cannot take rows: exit 1."""
    for t in range(20):
        maria.execute(
            "source", f"CREATE TABLE t{t:02d} (id INT PRIMARY KEY, name VARCHAR(20), n INT)"
        )
        maria.execute(
            "source",
            f"INSERT INTO t{t:02d} VALUES (1, 'a', {t}), (2, 'b', {t}), (3, 'c', {t})",
        )
    # An incompatible shape: a NOT NULL column with no default the source cannot fill.
    maria.execute(
        "target",
        "CREATE TABLE t07 (id INT PRIMARY KEY, name VARCHAR(20), n INT, audit INT NOT NULL)",
    )
    path = config(tmp_path, NO_STUDENTS + '[sync]\nworkers = 4\n[jobs.all]\ntables = ["*"]\n')
    result = etl("run", pair=maria, config=path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "all.t07: failed before it started: job 'all.t07': target table 't07' has NOT NULL" in (
        result.stdout
    )
    assert result.stdout.splitlines()[-1] == "19 of 20 jobs succeeded; failed: all.t07"
    assert "etl: error: all.t07: " in result.stderr
    for t in range(20):
        if t != 7:
            assert rows(maria, "target", f"SELECT COUNT(*), SUM(n) FROM t{t:02d}") == [(3, 3 * t)]
    assert rows(maria, "target", "SELECT COUNT(*) FROM t07") == [(0,)]
    runs = rows(
        maria,
        "target",
        "SELECT job, started_at, finished_at FROM etl_runs WHERE status = 'succeeded'",
    )
    assert sorted(r[0] for r in runs) == [f"all.t{t:02d}" for t in range(20) if t != 7]
    overlapping = max(
        sum(1 for _, start, end in runs if start <= moment < end) for _, moment, _ in runs
    )
    assert overlapping > 1  # several jobs were running at the same moment
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {e["job"] for e in events if e["event"] == "run_finished"} == {
        f"all.t{t:02d}" for t in range(20) if t != 7
    }
    # Each job keeps its own history: a rerun of one table touches only that job.
    rerun = etl("run", "all.t03", pair=maria, config=path)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.startswith("all.t03: succeeded")
    assert "unchanged 3," in rerun.stdout


@pytest.mark.parametrize("backend", ["lite", "maria"])
def test_schema_drift_freeze_refuses_and_evolve_adds_the_column(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    pair: DatabasePair = request.getfixturevalue(backend)
    make_shop(pair)
    path = config(tmp_path, NO_STUDENTS + '[jobs.orders]\ntable = "orders"\n')
    assert etl("run", pair=pair, config=path).returncode == 0
    pair.execute("source", "ALTER TABLE orders ADD COLUMN coupon VARCHAR(12)")
    pair.execute("source", "UPDATE orders SET coupon = 'SAVE10' WHERE id <= 3")

    frozen = etl("run", pair=pair, config=path)
    assert frozen.returncode == 2
    line = one_line_error(frozen)
    assert "job 'orders': target table 'orders' lacks column(s) coupon" in line
    assert 'schema_drift = "evolve" under [jobs.orders]' in line
    assert "coupon" not in [c["name"] for c in inspect(pair.engine("target")).get_columns("orders")]
    unverifiable = etl("verify", pair=pair, config=path)
    assert unverifiable.returncode == 2
    assert "target table 'orders' lacks column(s) coupon" in one_line_error(unverifiable)
    # verify judges the columns as a run would, and never alters a table.
    unaltered = etl("verify", pair=pair, config=path, ETL_JOB_ORDERS_SCHEMA_DRIFT="evolve")
    assert unaltered.returncode == 2
    assert "a real run would add them" in one_line_error(unaltered)

    evolved = etl("run", pair=pair, config=path, ETL_JOB_ORDERS_SCHEMA_DRIFT="evolve")
    assert evolved.returncode == 0, evolved.stderr
    assert "updated 3," in evolved.stdout
    added = {c["name"]: c for c in inspect(pair.engine("target")).get_columns("orders")}
    assert added["coupon"]["nullable"]
    assert rows(pair, "target", "SELECT COUNT(coupon) FROM orders") == [(3,)]
    verified = etl("verify", pair=pair, config=path, ETL_JOB_ORDERS_SCHEMA_DRIFT="evolve")
    assert verified.returncode == 0, verified.stderr
    assert "no drift" in verified.stdout
    assert any(
        json.loads(e)["event"] == "target_column_added"
        for e in evolved.stderr.splitlines()
        if e.startswith("{")
    )

    # A target column the source lacks is fine while an insert may leave it out.
    pair.execute("target", "ALTER TABLE orders ADD COLUMN loaded_by VARCHAR(20)")
    pair.execute("source", "INSERT INTO orders (id, customer) VALUES (100, 'new')")
    extra = etl("run", pair=pair, config=path)
    assert extra.returncode == 0, extra.stderr
    assert "inserted 1," in extra.stdout


def test_a_column_list_naming_a_dropped_column_and_a_retyped_column_are_refused(
    tmp_path: Path, maria: DatabasePair
) -> None:
    """A one-shot run reflects the source at start-up: a column gone from it is named."""
    make_shop(maria)
    path = config(
        tmp_path,
        NO_STUDENTS + '[jobs.orders]\ntable = "orders"\ncolumns = ["customer", "status"]\n',
    )
    assert etl("run", pair=maria, config=path).returncode == 0
    maria.execute("source", "ALTER TABLE orders DROP COLUMN status")
    dropped = etl("run", pair=maria, config=path)
    assert dropped.returncode == 2
    assert "job 'orders' (table 'orders'): columns names no column 'status'" in one_line_error(
        dropped
    )
    maria.execute("source", "ALTER TABLE orders ADD COLUMN status INT")
    retyped = etl("run", pair=maria, config=path)
    assert retyped.returncode == 2
    line = one_line_error(retyped)
    assert "job orders: column status: source type INTEGER" in line
    assert "would lose data (an integer column's values cannot go into a string column" in line


def test_sigterm_stops_the_jobs_in_flight_after_their_batch_and_starts_no_more(
    tmp_path: Path, maria: DatabasePair
) -> None:
    """Exit 130: running jobs end ``interrupted`` (each resumes later), the rest never start."""
    for t in range(6):
        maria.execute("source", f"CREATE TABLE s{t} (id INT PRIMARY KEY, v INT)")
        values = ", ".join(f"({i}, {i})" for i in range(1, 41))
        maria.execute("source", f"INSERT INTO s{t} VALUES {values}")
    path = config(
        tmp_path,
        NO_STUDENTS
        + "[sync]\nworkers = 2\npause_between_batches = 0.3\n"
        + '[jobs.slow]\ntables = ["s*"]\nbatch_size = 4\n',
    )
    process = subprocess.Popen(
        python_m_etl("run", "--config", str(path)),
        env=maria.environ(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if '"batch_committed"' in line:
            break
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130, out
    interrupted = [line for line in out.splitlines() if ": interrupted in " in line]
    assert 1 <= len(interrupted) <= 2
    assert "not started (stop requested): " in out
    assert "; interrupted: slow.s" in out.splitlines()[-1]
    resumed = etl("run", pair=maria, config=path, ETL_SYNC_PAUSE_BETWEEN_BATCHES="0")
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed after" in resumed.stdout
    for t in range(6):
        assert rows(maria, "target", f"SELECT COUNT(*) FROM s{t}") == [(40,)]


def test_one_table_of_a_tables_section_gets_its_own_settings(
    tmp_path: Path, pair: DatabasePair
) -> None:
    """``[jobs."shop.order_lines"]`` gives that table a key and exclusions on top of the
    section's settings (its ``where`` is inherited); a disabled table's section keeps it
    out of ``run shop``; a section for a table the patterns do not select is an error."""
    make_shop(pair)
    pair.execute("source", "CREATE TABLE order_notes (id INTEGER PRIMARY KEY, body TEXT)")
    path = config(
        tmp_path,
        NO_STUDENTS
        + '[jobs.shop]\ntables = ["order*"]\nwhere = "1 = 1"\nbatch_size = 9\n'
        + '[jobs."shop.order_lines"]\nkey = ["order_id", "line"]\nexclude = ["comment"]\n'
        + "where = \"sku <> 'sku-3'\"\n"
        + "[jobs.shop.order_notes]\nenabled = false\n",
    )
    result = etl("run", "shop", pair=pair, config=path)
    assert result.returncode == 0, result.stderr
    summaries = {line.split(":")[0]: line for line in result.stdout.splitlines() if ": " in line}
    assert set(summaries) == {"shop.orders", "shop.order_lines"}, result.stdout
    assert "succeeded" in summaries["shop.order_lines"]
    assert "read 78, inserted 78" in summaries["shop.order_lines"]
    lines = rows(pair, "target", "SELECT order_id, line, sku FROM order_lines ORDER BY 1, 2")
    assert len(lines) == 78  # 40 orders x 2 lines, less sku-3's two
    assert (3, 1, "sku-3") not in lines
    assert "comment" not in {
        c["name"] for c in inspect(pair.engine("target")).get_columns("order_lines")
    }
    assert len(rows(pair, "target", "SELECT id FROM orders")) == 40
    assert not inspect(pair.engine("target")).has_table("order_notes")

    path.write_text(path.read_text() + '[jobs."shop.invoices"]\nbatch_size = 5\n')
    refused = etl("run", pair=pair, config=path)
    assert refused.returncode == 2
    assert (
        "[jobs.\"shop.invoices\"]: table 'invoices' is not one of the tables [jobs.shop] selects"
        in one_line_error(refused)
    )


def test_a_python_jobs_section_sets_its_where_and_delete_policy(
    tmp_path: Path, lite: DatabasePair
) -> None:
    """``where`` and ``delete_policy`` in ``[jobs.students]`` apply to the Python job: a
    row leaving the filter is deleted, unless the policy keeps it; a filter the source
    refuses is a one-line configuration error (exit 2)."""
    lite.create_source([("A", "One", "c", 80.0), ("B", "Two", "c", 20.0), ("C", "Tre", "c", 60)])
    path = config(tmp_path, '[jobs.students]\nwhere = "score >= 50"\n')
    first = etl("run", pair=lite, config=path)
    assert first.returncode == 0, first.stderr
    assert [r[:2] for r in lite.rows("target")] == [("A", "One"), ("C", "Tre")]
    lite.execute("source", "UPDATE students SET score = 10 WHERE first_name = 'C'")
    again = etl("run", pair=lite, config=path)
    assert again.returncode == 0, again.stderr
    assert [r[:2] for r in lite.rows("target")] == [("A", "One")]

    path.write_text('[jobs.students]\nwhere = "score >= 50"\ndelete_policy = "keep"\n')
    lite.execute("source", "UPDATE students SET score = 10 WHERE first_name = 'A'")
    kept = etl("run", pair=lite, config=path)
    assert kept.returncode == 0, kept.stderr
    assert [r[:2] for r in lite.rows("target")] == [("A", "One")]

    path.write_text('[jobs.students]\nwhere = "no_such_column > 1"\n')
    refused = etl("run", pair=lite, config=path)
    assert refused.returncode == 2
    assert "job 'students': where 'no_such_column > 1' does not work on source table" in (
        one_line_error(refused)
    )


@pytest.mark.parametrize(
    ("column_type", "first", "later"),
    [
        ("DATETIME(6)", "'2024-02-29 23:59:59.999999' + INTERVAL :i SECOND", "'2030-01-01'"),
        ("DATE", "'2024-02-29' + INTERVAL :i DAY", "'2030-01-01'"),
        ("BIGINT UNSIGNED", "18446744073709551000 + :i", "18446744073709551615"),
        ("DECIMAL(20,6)", "0.000001 * :i", "99999999999999.999999"),
    ],
)
def test_a_configured_job_runs_incrementally_by_a_cursor_of_any_type(
    tmp_path: Path, maria: DatabasePair, column_type: str, first: str, later: str
) -> None:
    """``cursor`` makes a configured job incremental: the first run takes every row,
    the next only the rows whose cursor moved past the watermark (tagged in JSON)."""
    maria.execute(
        "source",
        f"CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20), changed {column_type})",
    )
    for i in range(1, 31):
        maria.execute("source", f"INSERT INTO items VALUES (:i, 'n', {first})", i=i)
    path = config(
        tmp_path,
        NO_STUDENTS + '[jobs.items]\ntable = "items"\ncursor = "changed"\n'
        "incremental_lookback = 0\n",
    )
    loaded = etl("run", "--incremental", pair=maria, config=path)
    assert loaded.returncode == 0, loaded.stderr
    assert "read 30, inserted 30" in loaded.stdout
    maria.execute("source", f"UPDATE items SET name = 'moved', changed = {later} WHERE id < 3")
    moved = etl("run", "--incremental", pair=maria, config=path)
    assert moved.returncode == 0, moved.stderr
    assert "read 2, inserted 0, updated 2" in moved.stdout
    assert rows(maria, "target", "SELECT id FROM items WHERE name = 'moved'") == [(1,), (2,)]
    again = etl("run", "--incremental", pair=maria, config=path)
    assert again.returncode == 0, again.stderr
    assert "read 0, inserted 0, updated 0" in again.stdout


def test_a_cursor_that_cannot_page_is_a_start_up_error(tmp_path: Path, lite: DatabasePair) -> None:
    lite.create_source([("A", "B", "C", 1.0)])
    path = config(tmp_path, NO_STUDENTS + '[jobs.s]\ntable = "students"\ncursor = "nope"\n')
    refused = etl("run", pair=lite, config=path)
    assert refused.returncode == 2
    assert "job 's' cursor column 'nope' is not in its table" in one_line_error(refused)
