"""Tables the jobs sync, in SQLAlchemy 2.0 typed declarative style.

The sync engine never imports this module: a job in ``jobs/`` hands it a table.
"""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base for the synced tables (not for the tool's own state tables)."""


class Students(Base):
    """A student's result in one course; a person is identified by their two names."""

    __tablename__ = "students"

    first_name: Mapped[str] = mapped_column(String(50), primary_key=True)
    last_name: Mapped[str] = mapped_column(String(50), primary_key=True)
    course: Mapped[str | None] = mapped_column(String(50))
    score: Mapped[float | None] = mapped_column(Float)
