"""The command line end to end: real processes, exit codes, one-line errors, no secrets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import inspect

from tests.helpers.support import REPO, DatabasePair, one_line_error, python_m_etl

SECRET = "s3cr3t-Pa55word"


def etl(
    *args: str, env: dict[str, str], cwd: Path | str = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        python_m_etl(*args),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(lite: DatabasePair) -> dict[str, str]:
    return lite.environ()


def assert_target_untouched(pair: DatabasePair) -> None:
    assert inspect(pair.engine("target")).get_table_names() == []


def test_readme_quickstart_runs_on_the_embedded_default(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`demo` then `run` in a fresh directory with no configuration: exit 0, rows copied."""
    clean = {k: v for k, v in env.items() if not k.startswith("ETL_")}
    assert etl("demo", "--rows", "2000", env=clean, cwd=tmp_path).returncode == 0
    run = etl("run", env=clean, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "students: succeeded" in run.stdout
    assert "inserted 2,000" in run.stdout
    assert (tmp_path / "var" / "target.db").exists()
    status = etl("status", env=clean, cwd=tmp_path)
    assert status.returncode == 0
    assert "succeeded" in status.stdout
    assert "2000" in status.stdout


def test_demo_never_wipes_a_table_that_holds_rows(env: dict[str, str], lite: DatabasePair) -> None:
    """Pointed at a real source by mistake, `demo` refuses unless told --replace."""
    lite.create_source([("Real", "Person", "C", 1.0)])
    refused = etl("demo", "--rows", "5", env=env)
    assert refused.returncode == 2
    assert "already holds 1 rows; `demo --replace`" in one_line_error(refused)
    assert lite.rows("source") == [("Real", "Person", "C", 1.0)]
    replaced = etl("demo", "--rows", "5", "--replace", env=env)
    assert replaced.returncode == 0
    assert len(lite.rows("source")) == 5


def test_missing_config_file_is_a_configuration_error(
    env: dict[str, str], lite: DatabasePair
) -> None:
    result = etl("run", "--config", "/nonexistent/etl.toml", env=env)
    assert result.returncode == 2
    assert "config file /nonexistent/etl.toml does not exist" in one_line_error(result)
    assert_target_untouched(lite)


def test_malformed_config_file_names_the_file_and_line(
    tmp_path: Path, env: dict[str, str], lite: DatabasePair
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[sync]\nbatch_size = = 3\n")
    result = etl("run", "--config", str(bad), env=env)
    assert result.returncode == 2
    line = one_line_error(result)
    assert str(bad) in line
    assert "not valid TOML" in line
    assert "line 2" in line
    assert_target_untouched(lite)


def test_unknown_setting_in_the_file_is_named(
    tmp_path: Path, env: dict[str, str], lite: DatabasePair
) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text("[sync]\nbach_size = 3\n")
    result = etl("run", "--config", str(bad), env=env)
    assert result.returncode == 2
    assert "[sync]: unknown setting 'bach_size'" in one_line_error(result)
    assert_target_untouched(lite)


def test_unknown_setting_in_the_environment_is_named(
    env: dict[str, str], lite: DatabasePair
) -> None:
    result = etl("run", env={**env, "ETL_SYNC_BACH_SIZE": "3"})
    assert result.returncode == 2
    assert "environment variable ETL_SYNC_BACH_SIZE: unknown setting" in one_line_error(result)
    assert_target_untouched(lite)


def test_setting_of_the_wrong_type_is_named(env: dict[str, str], lite: DatabasePair) -> None:
    result = etl("run", env={**env, "ETL_SYNC_BATCH_SIZE": "lots"})
    assert result.returncode == 2
    assert "batch_size must be a whole number, got 'lots'" in one_line_error(result)
    assert_target_untouched(lite)


def test_bad_url_is_a_configuration_error_without_the_password(
    env: dict[str, str], lite: DatabasePair
) -> None:
    result = etl("run", env={**env, "ETL_SOURCE_URL": f"not a url :{SECRET}@"})
    assert result.returncode == 2
    line = one_line_error(result)
    assert "source url" in line
    assert SECRET not in result.stdout + result.stderr
    assert_target_untouched(lite)


def test_unknown_driver_is_a_configuration_error(env: dict[str, str], lite: DatabasePair) -> None:
    result = etl("run", env={**env, "ETL_SOURCE_URL": "oracle+nope://u@h/db"})
    assert result.returncode == 2
    assert "no driver" in one_line_error(result) or "source url" in result.stderr
    assert_target_untouched(lite)


def test_unreachable_database_is_one_line_and_hides_the_password(
    env: dict[str, str], lite: DatabasePair
) -> None:
    url = f"mysql+pymysql://etl:{SECRET}@127.0.0.1:1/school"
    result = etl("run", env={**env, "ETL_SOURCE_URL": url, "ETL_SOURCE_CONNECT_TIMEOUT": "3"})
    assert result.returncode == 2
    line = one_line_error(result)
    assert "source database mysql+pymysql://etl:***@127.0.0.1:1/school" in line
    assert "unreachable" in line
    assert SECRET not in result.stdout + result.stderr
    assert_target_untouched(lite)


def test_password_from_a_file_is_used_and_never_shown(tmp_path: Path, maria: DatabasePair) -> None:
    """password_file (a container secret) overrides the URL's; errors never print it."""
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    env = maria.environ(ETL_SOURCE_PASSWORD_FILE=str(secret_file))
    result = etl("run", env=env)
    assert result.returncode == 2  # root has no password: the server refuses this one
    line = one_line_error(result)
    assert "Access denied" in line
    assert SECRET not in result.stdout + result.stderr


def test_missing_source_table_is_a_configuration_error(
    env: dict[str, str], lite: DatabasePair
) -> None:
    result = etl("run", env=env)
    assert result.returncode == 2
    assert "source table 'students' does not exist in sqlite:///" in one_line_error(result)
    assert_target_untouched(lite)


def test_unknown_job_is_a_usage_error(env: dict[str, str], lite: DatabasePair) -> None:
    lite.create_source([("A", "B", "C", 1.0)])
    result = etl("run", "teachers", env=env)
    assert result.returncode == 2
    assert "unknown job 'teachers'; known jobs: students" in one_line_error(result)
    assert_target_untouched(lite)


def test_bad_option_is_a_usage_error(env: dict[str, str]) -> None:
    result = etl("run", "--batch-size", "0", env=env)
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr


def test_rejected_rows_give_their_own_exit_code(env: dict[str, str], lite: DatabasePair) -> None:
    """Exit 3 when the run finished but set rows aside; `rejects` lists them."""
    lite.create_source([("A", "B", "C", 1.0)])
    lite.execute("source", "INSERT INTO students VALUES (:f, 'x', 'c', 1.0)", f="Y" * 60)
    result = etl("run", env=env)
    assert result.returncode == 3, result.stderr
    assert "rejected 1" in result.stdout
    listing = etl("rejects", env=env)
    assert listing.returncode == 0
    assert "first_name is 60 characters long" in listing.stdout


def test_null_key_parts_are_rejected_not_lost(env: dict[str, str], lite: DatabasePair) -> None:
    """SQLite lets a primary key column hold NULL; such rows are reported, not skipped."""
    lite.execute(
        "source",
        "CREATE TABLE students (first_name VARCHAR(50), last_name VARCHAR(50), "
        "course VARCHAR(50), score FLOAT, PRIMARY KEY (first_name, last_name))",
    )
    lite.execute("source", "INSERT INTO students VALUES ('A', 'B', 'C', 1.0)")
    lite.execute("source", "INSERT INTO students VALUES (NULL, 'Orphan', 'c', 2.0)")
    result = etl("run", env=env)
    assert result.returncode == 3
    listing = etl("rejects", "students", env=env)
    assert "key column first_name is NULL" in listing.stdout
    assert "rejected 1 [" in result.stdout  # reported once, not once per check
    assert lite.rows("target") == [("A", "B", "C", 1.0)]


def test_dry_run_prints_what_would_change(env: dict[str, str], lite: DatabasePair) -> None:
    lite.create_source([("A", "B", "C", 1.0), ("D", "E", "F", 2.0)])
    result = etl("run", "--dry-run", env=env)
    assert result.returncode == 0
    assert "dry run, nothing written; would insert 2" in result.stdout
    assert_target_untouched(lite)


def test_json_logs_carry_job_run_id_and_batch_bounds(
    env: dict[str, str], lite: DatabasePair
) -> None:
    import json

    lite.create_source([(f"N{i}", "x", "c", 1.0) for i in range(5)])
    result = etl("run", "--batch-size", "2", env=env)
    events = [json.loads(line) for line in result.stderr.splitlines()]
    batches = [e for e in events if e["event"] == "batch_committed"]
    assert len(batches) == 3
    assert all(e["job"] == "students" and e["run_id"] for e in batches)
    assert batches[0]["hi"] == ["N1", "x"]
    assert batches[1]["lo"] == ["N1", "x"]
    finished = [e for e in events if e["event"] == "run_finished"]
    assert finished[0]["inserted"] == 5
    assert finished[0]["seconds"] >= 0


def test_the_jobs_own_batch_size_comes_before_the_sync_default(
    env: dict[str, str], lite: DatabasePair
) -> None:
    """Job.batch_size (5000 for students) wins over [sync] batch_size in `run` and `verify`."""
    import json

    lite.create_source([(f"N{i}", "x", "c", 1.0) for i in range(5)])
    small_default = {**env, "ETL_SYNC_BATCH_SIZE": "2"}
    result = etl("run", env=small_default)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    started = [e for e in events if e["event"] == "run_started"]
    assert started[0]["batch_size"] == 5000
    verified = etl("verify", env=small_default)
    assert verified.returncode == 0, verified.stderr
    assert "of 1 key ranges compared" in verified.stdout
    job_setting = etl("verify", env={**small_default, "ETL_JOB_STUDENTS_BATCH_SIZE": "2"})
    assert "of 3 key ranges compared" in job_setting.stdout
