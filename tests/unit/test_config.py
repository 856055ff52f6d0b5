"""Configuration: file plus environment into one frozen object, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.config import load_settings
from etl.errors import ConfigError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "etl.toml"
    path.write_text(text)
    return str(path)


def test_defaults_are_embedded_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {})
    assert settings.source.url == "sqlite:///var/source.db"
    assert settings.target.url == "sqlite:///var/target.db"
    assert settings.sync.batch_size == 5000
    assert settings.config_path is None


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[source]\nurl = "sqlite:///a.db"\n[sync]\nbatch_size = 10\n')
    settings = load_settings(
        path, {"ETL_SYNC_BATCH_SIZE": "99", "ETL_TARGET_URL": "sqlite:///t.db"}
    )
    assert settings.source.url == "sqlite:///a.db"
    assert settings.target.url == "sqlite:///t.db"
    assert settings.sync.batch_size == 99


def test_etl_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[sync]\nbatch_size = 7\n")
    assert load_settings(None, {"ETL_CONFIG": path}).sync.batch_size == 7


def test_job_settings_from_file_and_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[jobs.students]\nbatch_size = 3\n")
    settings = load_settings(path, {"ETL_JOB_STUDENTS_SOURCE_TABLE": "pupils"})
    assert settings.job("students").batch_size == 3
    assert settings.job("students").source_table == "pupils"
    assert settings.job("other").enabled is True


def test_password_file_is_read_and_not_shown(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter22\n")
    settings = load_settings(None, {"ETL_SOURCE_PASSWORD_FILE": str(secret)})
    assert settings.source.password == "hunter22"
    assert "hunter22" not in repr(settings)


def test_url_with_a_password_is_not_in_the_repr() -> None:
    settings = load_settings(None, {"ETL_SOURCE_URL": "mysql://u:topsecret@h/db"})
    assert "topsecret" not in repr(settings)


def test_booleans_accept_the_usual_spellings() -> None:
    assert load_settings(None, {"ETL_SYNC_ALLOW_MASS_DELETE": "yes"}).sync.allow_mass_delete
    assert not load_settings(None, {"ETL_SYNC_ALLOW_MASS_DELETE": "0"}).sync.allow_mass_delete


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[sync]\nbatch_size = 0\n", {}, "batch_size must be at least 1"),
        ("[sync]\nmax_delete_fraction = 2\n", {}, "max_delete_fraction must be between 0 and 1"),
        ("[nope]\nx = 1\n", {}, "unknown section [nope]"),
        ("[sync]\nbatch_size = 'many'\n", {}, "batch_size must be a whole number"),
        ("[log]\nformat = 'xml'\n", {}, "format must be one of auto, json, console"),
        ("[log]\nlevel = 'loud'\n", {}, "level must be debug, info, warning or error"),
        ("", {"ETL_SYNC_ALLOW_MASS_DELETE": "maybe"}, "must be true or false"),
        ("", {"ETL_JOB_STUDENTS_COLOUR": "red"}, "ETL_JOB_STUDENTS_COLOUR: unknown job setting"),
        ("", {"ETL_SOURCE_PASSWORD_FILE": "/nonexistent/pw"}, "password_file /nonexistent/pw"),
        ("sync = 3\n", {}, "[sync] must be a table"),
    ],
)
def test_bad_settings_are_one_clear_line(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
