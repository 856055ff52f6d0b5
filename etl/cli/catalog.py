"""Every job this configuration has: the Python ones in ``jobs/``, then those in configuration.

A ``[jobs.<name>]`` section with ``table`` is a job of its own, reflected from the
source at start-up; one with ``tables`` (names or globs) becomes one job per matching
source table, named ``<name>.<table>``, each with its own checkpoint, run history, lock
and rejects (they all key on the job's name) and the section's settings. Any other
section overrides a Python job's settings and must name one.

Built once at the edge: the settings come back with a section for each expanded job,
so everything downstream reads a job's settings by its name as before.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, inspect

from etl.config import JobSettings, Settings
from etl.config.overrides import unused_overrides
from etl.core.tables import job_name, select_tables
from etl.engine.db import connect
from etl.engine.reflect import reflect_job, with_section_rules
from etl.engine.state import NAME_LENGTH
from etl.errors import ConfigError, UnknownJob
from etl.job import Job
from jobs import REGISTRY


@dataclass(frozen=True)
class Catalog:
    """The jobs found and the settings that go with them."""

    jobs: Mapping[str, Job]
    settings: Settings
    """The configuration, with a ``[jobs.<name>]`` section for every expanded job."""

    def select(self, names: Sequence[str]) -> list[Job]:
        """The named jobs (a ``tables`` section's name: all its jobs), or every enabled one."""
        if not names:
            return [job for name, job in self.jobs.items() if self.settings.job(name).enabled]
        chosen: dict[str, Job] = {}
        for name in names:
            found = [job for key, job in self.jobs.items() if key == name]
            found = found or self._members(name)
            if not found:
                raise UnknownJob(name, list(self.jobs))
            chosen.update((job.name, job) for job in found)
        return list(chosen.values())

    def _members(self, section: str) -> list[Job]:
        """A ``tables`` section's jobs; not those a table's own section disables (all of
        them when the whole section is disabled, since it was named)."""
        members = [(key, j) for key, j in self.jobs.items() if key.startswith(section + ".")]
        whole = self.settings.job(section).enabled
        return [j for key, j in members if self.settings.job(key).enabled or not whole]


def configured_sections(settings: Settings) -> dict[str, JobSettings]:
    """The sections that define jobs; ConfigError for one that names no job at all."""
    where = settings.config_path or "environment"
    own: dict[str, JobSettings] = {}
    for name, section in settings.jobs.items():
        if section.configured:
            if name in REGISTRY:
                raise ConfigError(
                    f"{where}: [jobs.{name}] sets table(s) but {name!r} is a job in jobs/: "
                    "give the configured job another name"
                )
            own[name] = section
        elif name not in REGISTRY:
            raise ConfigError(
                f"{where}: [jobs.{name}] names no known job; "
                f'known jobs: {", ".join(sorted(REGISTRY))} (or set table = "<name>")'
            )
    return own


def needs_source(settings: Settings) -> bool:
    """Whether the catalogue must reach the source: jobs to reflect, or a Python job's
    ``where`` to try there (so a bad filter is a start-up error, not one per run)."""
    return bool(configured_sections(settings)) or any(
        name in REGISTRY and section.where for name, section in settings.jobs.items()
    )


def load_catalog(settings: Settings, source: Engine | None) -> Catalog:
    """Every job; configured ones are reflected through ``source`` (needed only for them)."""
    own = configured_sections(settings)
    found: dict[str, Job] = dict(REGISTRY)
    sections = dict(settings.jobs)
    ruled = {
        name: section
        for name, section in settings.jobs.items()
        if name in REGISTRY and (section.where or section.delete_policy or section.cursor)
    }
    if own and source is None:
        raise ValueError("configured jobs need the source engine")
    if source is None or not (own or ruled):  # a filter is tried on the source when reached
        found.update((n, with_section_rules(found[n], s, None)) for n, s in ruled.items())
    else:
        with connect(source, "source") as connection:
            found.update((n, with_section_rules(found[n], s, connection)) for n, s in ruled.items())
            available = sorted(inspect(connection).get_table_names())
            for section, job_settings in own.items():
                shared = job_settings.tables is not None
                made = _expand(section, job_settings, available, settings.table_jobs)
                for name, table, settings_of in made:
                    if len(name) > NAME_LENGTH:  # the run history keeps the job's name
                        raise ConfigError(
                            f"[jobs.{section}]: job name {name!r} is longer than "
                            f"{NAME_LENGTH} characters: shorten the section name"
                        )
                    sections[name] = settings_of
                    found[name] = reflect_job(name, table, settings_of, connection, shared=shared)
    unused_overrides(settings.table_jobs, found)
    expanded = dataclasses.replace(settings, jobs=types.MappingProxyType(sections))
    _one_writer_per_table(found, expanded)
    return Catalog(jobs=types.MappingProxyType(found), settings=expanded)


def _one_writer_per_table(jobs: Mapping[str, Job], settings: Settings) -> None:
    """ConfigError when two enabled jobs would write the same target table.

    Each job holds only its own lock: two of them on one table would delete each
    other's rows. Typical: ``tables = ["*"]`` matching a Python job's table.
    """
    writers: dict[str, str] = {}
    for name, job in jobs.items():
        job_settings = settings.job(name)
        if not job_settings.enabled:
            continue
        table = job_settings.target_table or job.table_named(job_settings.source_table).name
        if table in writers:
            raise ConfigError(
                f"jobs {writers[table]!r} and {name!r} both write target table {table!r}: "
                "disable one (enabled = false), narrow the tables patterns or set target_table"
            )
        writers[table] = name


def _expand(
    section: str,
    settings: JobSettings,
    available: Sequence[str],
    per_table: Mapping[str, JobSettings],
) -> list[tuple[str, str, JobSettings]]:
    """(job name, source table, its settings) for each job a configured section makes:
    a table's own section (``[jobs."shop.orders"]``) where it has one."""
    if settings.tables is None:
        return [(section, str(settings.table), settings)]
    return [
        (
            job_name(section, table),
            table,
            per_table.get(job_name(section, table))
            or dataclasses.replace(settings, tables=None, table=table),
        )
        for table in select_tables(section, settings.tables, available)
    ]


def known_names(settings: Settings) -> list[str]:
    """Job names knowable without the source: Python jobs, ``table`` sections, ``tables`` ones."""
    names = list(REGISTRY)
    for name, section in configured_sections(settings).items():
        names.append(name if section.tables is None else f"{name}.*")
    return names
