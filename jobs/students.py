"""The Students job: student results, keyed by first and last name."""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from etl.job import Job
from jobs import students_demo


class Base(DeclarativeBase):
    """Declarative base for the synced tables (not for the tool's own state tables)."""


class Students(Base):
    """A student's result in one course; a person is identified by their two names."""

    __tablename__ = "students"

    first_name: Mapped[str] = mapped_column(String(50), primary_key=True)
    last_name: Mapped[str] = mapped_column(String(50), primary_key=True)
    course: Mapped[str | None] = mapped_column(String(50))
    score: Mapped[float | None] = mapped_column(Float)


JOB = Job(
    name="students",
    table=Students.__table__,  # type: ignore[arg-type]  # a Table at runtime
    description="Students (first_name, last_name) -> course, score",
    batch_size=5000,
    delete_policy="propagate",
    schedule="*/15 * * * *",
    demo=students_demo.fill,
)
