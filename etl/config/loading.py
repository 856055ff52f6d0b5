"""Configuration: one frozen, typed object built once from a TOML file and the environment.

Precedence, lowest first: built-in defaults, the file, ``ETL_<SECTION>_<KEY>`` variables.
The file is ``--config``, else ``$ETL_CONFIG``, else ``config/etl.toml`` when it exists.
Passwords come from ``password`` / ``password_file`` (container secrets) or the
environment, so committed files need not hold them.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from etl.config.overrides import split_table_overrides
from etl.config.settings import (
    DEFAULT_CONFIG_PATH,
    DEFAULTS,
    SECTIONS,
    DaemonSettings,
    DatabaseSettings,
    JobSettings,
    LogSettings,
    RetrySettings,
    Settings,
    SyncSettings,
)
from etl.errors import ConfigError


def load_settings(path: str | None, environ: Mapping[str, str]) -> Settings:
    """Build the settings from the config file and ``environ``; raise ConfigError if wrong."""
    chosen = _choose_file(path, environ)
    raw = _read_toml(chosen) if chosen else {}
    where = str(chosen) if chosen else "built-in defaults"
    merged = _merge_environment(_deep_merge(DEFAULTS, raw), environ)
    sections: dict[str, Any] = {}
    for name, raw_section in merged.items():
        if name == "jobs":
            continue
        if name not in SECTIONS:
            raise ConfigError(f"{where}: unknown section [{name}]; known: {_known(SECTIONS)}")
        sections[name] = _build(SECTIONS[name], raw_section, f"{where}: [{name}]")
    raw_jobs, raw_tables = split_table_overrides(
        _as_table(merged.get("jobs", {}), f"{where}: [jobs]"), where
    )
    jobs = {
        job: _build(JobSettings, values, f"{where}: [jobs.{job}]")
        for job, values in raw_jobs.items()
    }
    per_table = {
        job: _build(JobSettings, values, f'{where}: [jobs."{job}"]')
        for job, values in raw_tables.items()
    }
    source = _with_password(sections["source"], "source", where)
    target = _with_password(sections["target"], "target", where)
    settings = Settings(
        source=source,
        target=target,
        sync=sections.get("sync", SyncSettings()),
        retry=sections.get("retry", RetrySettings()),
        log=sections.get("log", LogSettings()),
        daemon=sections.get("daemon", DaemonSettings()),
        jobs=types.MappingProxyType(jobs),
        table_jobs=types.MappingProxyType(per_table),
        config_path=str(chosen) if chosen else None,
    )
    _check_ranges(settings, where)
    return settings


def _choose_file(path: str | None, environ: Mapping[str, str]) -> Path | None:
    if path:
        return Path(path)
    if environ.get("ETL_CONFIG"):
        return Path(environ["ETL_CONFIG"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _merge_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``ETL_<SECTION>_<KEY>`` and ``ETL_JOB_<JOB>_<KEY>`` variables over the file."""
    merged = _deep_merge(raw, {})
    for name, value in sorted(environ.items()):
        if not name.startswith("ETL_") or name == "ETL_CONFIG":
            continue
        rest = name[len("ETL_") :].lower()
        if rest.startswith("job_"):
            job, key = _split_job_variable(name, rest[len("job_") :])
            jobs = merged.setdefault("jobs", {})
            jobs[job] = {**jobs.get(job, {}), key: value}
            continue
        section, _, key = rest.partition("_")
        if section not in SECTIONS:
            continue
        known = {f.name for f in dataclasses.fields(SECTIONS[section])}
        if key not in known:
            raise ConfigError(
                f"environment variable {name}: unknown setting {key!r} in [{section}]; "
                f"known: {', '.join(sorted(known))}"
            )
        merged[section] = {**merged.get(section, {}), key: value}
    return merged


def _split_job_variable(name: str, rest: str) -> tuple[str, str]:
    """Split ``<job>_<key>``: both may hold underscores, so match the known keys."""
    for key in sorted((f.name for f in dataclasses.fields(JobSettings)), key=len, reverse=True):
        if rest.endswith("_" + key) and len(rest) > len(key) + 1:
            return rest[: -len(key) - 1], key
    known = ", ".join(sorted(f.name for f in dataclasses.fields(JobSettings)))
    raise ConfigError(f"environment variable {name}: unknown job setting; known: {known}")


def _as_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table, got {type(value).__name__}")
    return dict(value)


def _build(cls: type[Any], raw: Any, where: str) -> Any:
    """Make a settings dataclass from a table, checking names and converting types."""
    table = _as_table(raw, where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(fields))}"
        )
    values = {key: _convert(value, hints[key], f"{where} {key}") for key, value in table.items()}
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required setting {missing[0]!r}")
    return cls(**values)


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Coerce a TOML value or an environment string to the field's declared type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value == "" and len(inner) < len(args)):
            return None
        return _convert(value, inner[0], where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        return _to_names(value, where)
    if hint is bool:
        return _to_bool(value, where)
    if hint in (int, float):
        return _to_number(value, hint, where)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _to_names(value: Any, where: str) -> tuple[str, ...]:
    """A list of names: a TOML array of strings, or a comma-separated environment value."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of names, got {value!r}")
    if not value:
        raise ConfigError(f"{where} must name at least one, got an empty list")
    return tuple(value)


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{where} must be true or false, got {value!r}")


def _to_number(value: Any, kind: type[Any], where: str) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        noun = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{where} must be {noun}, got {value!r}") from None


def _with_password(db: DatabaseSettings, role: str, where: str) -> DatabaseSettings:
    if db.password is not None or not db.password_file:
        return db
    try:
        secret = Path(db.password_file).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(
            f"{where}: [{role}] password_file {db.password_file} cannot be read: {error.strerror}"
        ) from None
    return dataclasses.replace(db, password=secret[0] if secret else "")


def _check_ranges(settings: Settings, where: str) -> None:
    sync = settings.sync
    if sync.batch_size < 1:
        raise ConfigError(f"{where}: [sync] batch_size must be at least 1, got {sync.batch_size}")
    if not 0.0 <= sync.max_delete_fraction <= 1.0:
        raise ConfigError(
            f"{where}: [sync] max_delete_fraction must be between 0 and 1, "
            f"got {sync.max_delete_fraction}"
        )
    if sync.pause_between_batches < 0:
        raise ConfigError(f"{where}: [sync] pause_between_batches must not be negative")
    if not 1 <= sync.workers <= 64:
        raise ConfigError(f"{where}: [sync] workers must be 1 to 64, got {sync.workers}")
    for name, job in [*settings.jobs.items(), *settings.table_jobs.items()]:
        _check_configured_job(name, job, f"{where}: [jobs.{name}]", settings.table_jobs)
        if job.batch_size is not None and job.batch_size < 1:
            raise ConfigError(f"{where}: [jobs.{name}] batch_size must be at least 1")
        if job.interval is not None and job.interval <= 0:
            raise ConfigError(f"{where}: [jobs.{name}] interval must be more than 0 seconds")
        if job.jitter < 0:
            raise ConfigError(f"{where}: [jobs.{name}] jitter must not be negative")
        if job.incremental_interval is not None and job.incremental_interval <= 0:
            raise ConfigError(
                f"{where}: [jobs.{name}] incremental_interval must be more than 0 seconds"
            )
        if job.incremental_lookback is not None and job.incremental_lookback < 0:
            raise ConfigError(f"{where}: [jobs.{name}] incremental_lookback must not be negative")
    _check_daemon(settings.daemon, where)
    retry = settings.retry
    if retry.attempts < 1 or min(retry.initial_backoff, retry.max_backoff, retry.jitter) < 0:
        raise ConfigError(f"{where}: [retry] attempts must be at least 1, times not negative")
    if settings.log.level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(
            f"{where}: [log] level must be debug, info, warning or error, "
            f"got {settings.log.level!r}"
        )


def _check_configured_job(
    name: str, job: JobSettings, where: str, per_table: Mapping[str, JobSettings]
) -> None:
    """The settings of a job defined in configuration (``table`` or ``tables``) fit together."""
    own = ("key", "columns", "exclude")  # where and delete_policy suit Python jobs too
    if not job.configured:
        given = [key for key in own if getattr(job, key) is not None]
        if given:
            raise ConfigError(f'{where} sets {given[0]} but no table: add table = "<name>"')
        return
    if job.table is not None and job.tables is not None:
        raise ConfigError(f"{where} sets both table and tables: choose one")
    if job.columns is not None and job.exclude is not None:
        raise ConfigError(f"{where} sets both columns and exclude: choose one")
    if job.source_table is not None:
        raise ConfigError(f"{where} sets source_table next to table: table names the source table")
    if job.tables is not None and (job.target_table is not None or job.key or job.columns):
        raise ConfigError(
            f"{where} sets tables with target_table, key or columns, which name one table's "
            'columns: give that table its own section with table = "<name>"'
        )
    if "." in name and name not in per_table:
        raise ConfigError(f"{where}: a job name must not contain '.' (used by tables jobs)")


def _check_daemon(daemon: DaemonSettings, where: str) -> None:
    if not 0 <= daemon.health_port <= 65535:
        raise ConfigError(f"{where}: [daemon] health_port must be 0 (off) to 65535")
    if daemon.stop_timeout <= 0:
        raise ConfigError(f"{where}: [daemon] stop_timeout must be more than 0 seconds")
    if daemon.misfire_grace_time < 1:
        raise ConfigError(f"{where}: [daemon] misfire_grace_time must be at least 1 second")
    if daemon.probe_timeout < 1 or daemon.probe_cache_seconds < 0:
        raise ConfigError(
            f"{where}: [daemon] probe_timeout must be at least 1, probe_cache_seconds at least 0"
        )


def _known(sections: Mapping[str, Any]) -> str:
    return ", ".join([*sorted(sections), "jobs"])
