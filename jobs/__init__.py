"""The registry of jobs: adding a table to sync means adding its module here."""

from __future__ import annotations

from collections.abc import Mapping

from etl.errors import UnknownJob
from etl.job import Job
from jobs import students

REGISTRY: Mapping[str, Job] = {job.name: job for job in (students.JOB,)}


def get_job(name: str) -> Job:
    """The job called ``name``; UnknownJob lists the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownJob(name, list(REGISTRY)) from None
