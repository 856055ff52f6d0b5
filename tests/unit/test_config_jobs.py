"""Jobs in configuration: table selection by name and glob, column choice, drift, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.config import load_settings
from etl.core.drift import Column, source_drift, target_gap
from etl.core.tables import choose_columns, job_name, select_tables
from etl.errors import ConfigError

SOURCE = ["customers", "etl_runs", "order_lines", "order_notes", "orders", "Orders2"]


def test_star_selects_every_table_but_the_tools_own() -> None:
    assert select_tables("all", ["*"], SOURCE) == [
        "customers",
        "order_lines",
        "order_notes",
        "orders",
        "Orders2",
    ]


def test_names_and_globs_select_each_table_once_in_pattern_order() -> None:
    chosen = select_tables("shop", ["orders", "order_*", "order_lines"], SOURCE)
    assert chosen == ["orders", "order_lines", "order_notes"]


def test_bang_patterns_leave_tables_out() -> None:
    assert select_tables("s", ["!order_*", "*", "!Orders2"], SOURCE) == ["customers", "orders"]
    assert select_tables("s", ["orders", "!nothing_like_it"], SOURCE) == ["orders"]
    with pytest.raises(ConfigError, match="tables only leaves tables out"):
        select_tables("s", ["!orders"], SOURCE)


def test_globs_are_case_sensitive_and_bracket_classes_work() -> None:
    assert select_tables("s", ["O*"], SOURCE) == ["Orders2"]
    assert select_tables("s", ["order_[l]*"], SOURCE) == ["order_lines"]


def test_a_plain_name_may_select_a_tool_table_only_when_named() -> None:
    assert select_tables("s", ["c*", "etl_runs"], SOURCE) == ["customers", "etl_runs"]
    with pytest.raises(ConfigError, match="'etl_\\*' matches no table"):
        select_tables("s", ["etl_*"], SOURCE)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("invoices", "[jobs.shop] tables: 'invoices' matches no table in the source"),
        ("inv*", "'inv*' matches no table in the source"),
        ("ORDERS", "(names are case-sensitive)"),
    ],
)
def test_a_pattern_that_selects_nothing_is_an_error(pattern: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        select_tables("shop", [pattern], SOURCE)
    assert message in str(error.value)


def test_expanded_jobs_are_named_section_dot_table() -> None:
    assert job_name("shop", "orders") == "shop.orders"


def test_columns_key_first_primary_key_by_default() -> None:
    key, columns = choose_columns(
        "j", "t", ["a", "id", "b"], ["id"], key=None, columns=None, exclude=None
    )
    assert (key, columns) == (["id"], ["id", "a", "b"])


def test_key_for_a_table_without_primary_key_and_exclude() -> None:
    key, columns = choose_columns(
        "j", "t", ["a", "b", "c"], [], key=["b", "a"], columns=None, exclude=["c"]
    )
    assert (key, columns) == (["b", "a"], ["b", "a"])


def test_a_column_list_always_holds_the_key() -> None:
    _, columns = choose_columns(
        "j", "t", ["id", "a", "b"], ["id"], key=None, columns=["b"], exclude=None
    )
    assert columns == ["id", "b"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"key": None}, "job 'j' (table 't') has no primary key: set key"),
        ({"key": ["nope"]}, "job 'j' (table 't'): key names no column 'nope'; the table has a, b"),
        ({"key": ["a"], "columns": ["zz"]}, "columns names no column 'zz'"),
        ({"key": ["a"], "exclude": ["zz"]}, "exclude names no column 'zz'"),
        ({"key": ["a"], "exclude": ["a"]}, "exclude names key column 'a'"),
    ],
)
def test_wrong_key_or_columns_name_the_job_and_the_table(
    settings: dict[str, list[str] | None], message: str
) -> None:
    options: dict[str, list[str] | None] = {"key": None, "columns": None, "exclude": None}
    options.update(settings)
    with pytest.raises(ConfigError) as error:
        choose_columns("j", "t", ["a", "b"], [], **options)
    assert message in str(error.value)


def test_source_drift_added_dropped_and_changed() -> None:
    job = [Column("id", "INTEGER"), Column("name", "VARCHAR(20)"), Column("gone", "INTEGER")]
    now = [
        Column("id", "INTEGER"),
        Column("name", "VARCHAR(40)"),
        Column("new", "INTEGER"),
        Column("total", "INTEGER", generated=True),
    ]
    drift = source_drift(job, now, follows_source=True)
    assert (drift.added, drift.dropped, drift.changed) == (["new"], ["gone"], ["name"])
    assert drift.describe() == "added new; dropped gone; changed type name"


def test_a_fixed_column_list_ignores_new_source_columns_and_untyped_jobs_no_types() -> None:
    job = [Column("id", ""), Column("name", "")]
    now = [Column("id", "BIGINT"), Column("name", "TEXT"), Column("new", "INTEGER")]
    assert not source_drift(job, now, follows_source=False)
    assert source_drift(job, now, follows_source=True, excluded=["new"]).added == []


def test_target_gap_missing_blocking_and_generated_columns() -> None:
    target = [
        Column("id", "INT", optional=False),
        Column("note", "TEXT"),  # extra, nullable: fine
        Column("audit", "INT", optional=False),  # extra, NOT NULL, no default: blocks
        Column("total", "INT", generated=True),
    ]
    gap = target_gap(["id", "name", "total"], ["id"], target)
    assert (gap.missing, gap.blocking, gap.generated) == (["name"], ["audit"], ["total"])


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "etl.toml"
    path.write_text(text)
    return str(path)


def test_configured_job_settings_parse_from_file_and_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[sync]\nworkers = 8\n[jobs.shop]\ntables = ["orders", "order_*"]\n'
        'where = "status <> \'draft\'"\nschema_drift = "evolve"\n'
        '[jobs.notes]\ntable = "notes"\nkey = ["a", "b"]\n',
    )
    settings = load_settings(path, {"ETL_JOB_NOTES_EXCLUDE": "body, blob"})
    assert settings.sync.workers == 8
    shop, notes = settings.job("shop"), settings.job("notes")
    assert shop.tables == ("orders", "order_*")
    assert shop.configured
    assert shop.where == "status <> 'draft'"
    assert shop.schema_drift == "evolve"
    assert notes.key == ("a", "b")
    assert notes.exclude == ("body", "blob")
    assert not settings.job("students").configured
    assert settings.job("students").schema_drift == "freeze"


def test_a_tables_sections_table_section_is_merged_over_it(tmp_path: Path) -> None:
    """``[jobs."shop.orders"]`` and the nested ``[jobs.shop.lines]`` read the section's
    settings with their own on top, each for its one table."""
    path = write(
        tmp_path,
        '[jobs.shop]\ntables = ["*"]\nwhere = "tenant = 7"\nbatch_size = 9\n'
        '[jobs."shop.orders"]\nbatch_size = 100\ntarget_table = "paid"\n'
        '[jobs.shop.lines]\nkey = ["order_id", "line"]\nenabled = false\n',
    )
    settings = load_settings(path, {"ETL_JOB_SHOP_SCHEMA_DRIFT": "evolve"})
    assert set(settings.jobs) == {"shop"}
    orders, lines = settings.table_jobs["shop.orders"], settings.table_jobs["shop.lines"]
    assert (orders.table, orders.tables, orders.target_table) == ("orders", None, "paid")
    assert (orders.batch_size, orders.where, orders.schema_drift) == (100, "tenant = 7", "evolve")
    assert (lines.table, lines.key, lines.enabled, lines.batch_size) == (
        "lines",
        ("order_id", "line"),
        False,
        9,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[jobs.a]\ntable = "t"\ntables = ["*"]\n', "[jobs.a] sets both table and tables"),
        ('[jobs.a]\ntable = "t"\ncolumns = ["x"]\nexclude = ["y"]\n', "both columns and exclude"),
        ('[jobs.a]\ntables = ["*"]\ntarget_table = "x"\n', "sets tables with target_table"),
        ('[jobs.a]\nkey = ["x"]\n', "[jobs.a] sets key but no table"),
        ('[jobs.a]\ntable = "t"\nkey = []\n', "key must name at least one"),
        ('[jobs.a]\ntable = "t"\nkey = "id"\n', None),
        ('[jobs.a]\ntable = "t"\nschema_drift = "melt"\n', "must be one of freeze, evolve"),
        ("[sync]\nworkers = 0\n", "[sync] workers must be 1 to 64"),
        (
            '[jobs.a]\ntables = ["*"]\n[jobs."a.t"]\ntable = "x"\n',
            "[jobs.\"a.t\"] is the settings of table 't' of [jobs.a] and must not set table",
        ),
        (
            '[jobs.a]\ntables = ["*"]\n[jobs.a.t]\ncolumns = ["x"]\nexclude = ["y"]\n',
            "[jobs.a.t] sets both columns and exclude",
        ),
        ('[jobs.a]\ntable = "t"\n[jobs.a.t]\nkey = ["x"]\n', "[jobs.a]: unknown setting 't'"),
    ],
)
def test_configured_job_settings_that_cannot_work_are_one_line_errors(
    tmp_path: Path, text: str, message: str | None
) -> None:
    path = write(tmp_path, text)
    if message is None:  # a single name is a list of one, as in the environment
        assert load_settings(path, {}).job("a").key == ("id",)
        return
    with pytest.raises(ConfigError) as error:
        load_settings(path, {})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_retyped_names_other_kinds_and_narrower_strings() -> None:
    from etl.core.drift import retyped
    from etl.core.validate import ColumnSpec

    source = [
        ColumnSpec("id", "integer", False),
        ColumnSpec("n", "string", True, length=10),
        ColumnSpec("name", "string", True, length=80),
        ColumnSpec("price", "other", True),
    ]
    target = [
        ColumnSpec("id", "integer", False),
        ColumnSpec("n", "integer", True),
        ColumnSpec("name", "string", True, length=40),
        ColumnSpec("price", "float", True),
    ]
    changed = retyped(source, target)
    assert (changed.kinds, changed.narrower) == (["n"], ["name"])
    assert retyped(None, target) == retyped([], [])


def test_portable_makes_another_databases_types_generic_and_drops_its_collations() -> None:
    from sqlalchemy import Column as SqlColumn
    from sqlalchemy import MetaData, String, Table
    from sqlalchemy.dialects import mysql, postgresql
    from sqlalchemy.schema import CreateTable

    from etl.engine.reflect import portable

    source = Table(
        "t",
        MetaData(),
        SqlColumn("id", mysql.INTEGER(display_width=11), primary_key=True, autoincrement=False),
        SqlColumn("flag", mysql.TINYINT(1)),
        SqlColumn("name", mysql.VARCHAR(30, collation="utf8mb4_unicode_ci")),
        SqlColumn("body", String(collation="C")),
    )
    assert portable(source, mysql.dialect(), mysql.dialect()) is source  # same database
    ddl = str(
        CreateTable(portable(source, postgresql.dialect(), mysql.dialect())).compile(
            dialect=postgresql.dialect()
        )
    )
    assert "id INTEGER NOT NULL" in ddl
    assert "flag INTEGER" in ddl
    assert "name VARCHAR(30)," in ddl
    assert "COLLATE" not in ddl
