"""Python baselines, run as their own processes so their peak RSS is measured like the sync's.

    python -m bench.baselines core SOURCE_URL TARGET_URL [--batch 5000]
    python -m bench.baselines orm  SOURCE_URL TARGET_URL [--commit-every 1000]

Both copy `students` from source to target as an upsert; neither propagates deletes. They
are the "what would a straightforward SQLAlchemy job do" yardsticks, not tuned code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, select
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


def students_table(metadata: MetaData) -> Table:
    """The students table as Core sees it."""
    return Table(
        "students",
        metadata,
        Column("first_name", String(50), primary_key=True),
        Column("last_name", String(50), primary_key=True),
        Column("course", String(50)),
        Column("score", Float),
    )


class Base(DeclarativeBase):
    """Declarative base for the ORM baseline."""


class Student(Base):
    """ORM mapping of students; composite natural primary key."""

    __tablename__ = "students"
    first_name: Mapped[str] = mapped_column(String(50), primary_key=True)
    last_name: Mapped[str] = mapped_column(String(50), primary_key=True)
    course: Mapped[str | None] = mapped_column(String(50))
    score: Mapped[float | None] = mapped_column(Float)


def core_upsert(source_url: str, target_url: str, batch: int) -> int:
    """Stream the source (server-side cursor) and upsert each batch with one executemany."""
    table = students_table(MetaData())
    stmt = insert(table)
    stmt = stmt.on_duplicate_key_update(course=stmt.inserted.course, score=stmt.inserted.score)
    src, tgt = create_engine(source_url), create_engine(target_url)
    copied = 0
    with src.connect() as sconn, tgt.connect() as tconn:
        result = sconn.execution_options(yield_per=batch).execute(select(table))
        for part in result.partitions():
            tconn.execute(stmt, [dict(r._mapping) for r in part])
            tconn.commit()
            copied += len(part)
    return copied


def orm_merge(source_url: str, target_url: str, commit_every: int) -> int:
    """Session.merge() one object per source row (a SELECT by PK each), commit every N."""
    src, tgt = create_engine(source_url), create_engine(target_url)
    copied = 0
    with src.connect() as sconn, Session(tgt) as session:
        rows = sconn.execution_options(yield_per=commit_every).execute(select(Student.__table__))
        for row in rows:
            session.merge(Student(**row._mapping))
            copied += 1
            if copied % commit_every == 0:
                session.commit()
                session.expunge_all()
        session.commit()
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the number of rows copied."""
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=["core", "orm"])
    parser.add_argument("source_url")
    parser.add_argument("target_url")
    parser.add_argument("--batch", type=int, default=5000, help="core: rows per executemany")
    parser.add_argument("--commit-every", type=int, default=1000, help="orm: rows per commit")
    args = parser.parse_args(argv)
    if args.kind == "core":
        copied = core_upsert(args.source_url, args.target_url, args.batch)
    else:
        copied = orm_merge(args.source_url, args.target_url, args.commit_every)
    print(f"{args.kind}: {copied} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
