"""The Students job: student results, keyed by first and last name."""

from __future__ import annotations

from etl.job import Job
from etl.models import Students

JOB = Job(
    name="students",
    table=Students.__table__,  # type: ignore[arg-type]  # a Table at runtime
    description="Students (first_name, last_name) -> course, score",
    batch_size=5000,
    delete_policy="propagate",
    schedule="*/15 * * * *",
)
