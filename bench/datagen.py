"""Deterministic student data: an initial snapshot plus one planned change set.

Everything is drawn from one seeded `random.Random`, so the same (rows, seed) always yields
byte-identical tables, and the harness loads them with LOAD DATA LOCAL INFILE (the fastest
client-side path; ~1M rows in a few seconds).
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.mysqlserver import Server

DATA_DIR = Path(__file__).with_name("data")

COURSES = (
    "Algebra", "Anatomy", "Art History", "Astronomy", "Biochemistry", "Biology", "Calculus",
    "Chemistry", "Computer Science", "Creative Writing", "Data Structures", "Databases",
    "Economics", "Electrical Engineering", "English Literature", "Environmental Science",
    "Ethics", "Finance", "French", "Genetics", "Geography", "Geology", "German", "History",
    "Linear Algebra", "Linguistics", "Macroeconomics", "Marketing", "Mechanics",
    "Microbiology", "Music Theory", "Neuroscience", "Organic Chemistry", "Philosophy",
    "Physics", "Political Science", "Psychology", "Sociology", "Spanish", "Statistics",
    "Thermodynamics", "World Religions",
)  # fmt: skip

TABLE_DDL = (
    "CREATE TABLE {table} (first_name VARCHAR(50) NOT NULL, last_name VARCHAR(50) NOT NULL,"
    " course VARCHAR(50), score FLOAT, PRIMARY KEY (first_name, last_name))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)
KEY_DDL = (
    "CREATE TABLE {table} (first_name VARCHAR(50) NOT NULL, last_name VARCHAR(50) NOT NULL,"
    " score FLOAT, PRIMARY KEY (first_name, last_name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)

Row = tuple[str, str, str, str]


def load_names(filename: str) -> list[str]:
    """Read a vendored name list, sorted case-insensitively so pair order = PK order."""
    lines = (DATA_DIR / filename).read_text(encoding="utf-8").splitlines()
    return sorted((n for n in lines if n and not n.startswith("#")), key=str.lower)


@dataclass(frozen=True)
class Plan:
    """The initial rows and the change set, all as TSV-ready string tuples."""

    rows: list[Row]
    changed: list[Row]  # same keys as some initial rows, different score
    deleted: list[Row]
    inserted: list[Row]


class NameSpace:
    """Maps a pair index to (first, last); past first x last pairs, a numeric suffix is added."""

    def __init__(self) -> None:
        self.first = load_names("first_names.txt")
        self.last = load_names("last_names.txt")
        self.pairs = len(self.first) * len(self.last)

    def name(self, index: int) -> tuple[str, str]:
        """Index -> names; round r > 0 gets last name suffix ' r+1' to stay unique."""
        rnd, pair = divmod(index, self.pairs)
        f, l_ = divmod(pair, len(self.last))
        last = self.last[l_] if rnd == 0 else f"{self.last[l_]} {rnd + 1}"
        return self.first[f], last

    def sort_key(self, index: int) -> tuple[int, int]:
        """PK-ish order: pair first, suffix round second."""
        return index % self.pairs, index


def fmt_score(tenths: int) -> str:
    """Scores live on a 0.0..100.0 grid of tenths: they round-trip through FLOAT exactly."""
    return f"{tenths // 10}.{tenths % 10}"


def make_plan(rows: int, seed: int) -> Plan:
    """Draw `rows` unique students, then 1% score changes, 0.1% deletes and 0.1% inserts."""
    rng = random.Random(seed)
    names = NameSpace()
    n_change, n_delete, n_insert = rows // 100, rows // 1000, rows // 1000
    need = rows + n_insert
    rounds = -(-need // names.pairs)
    picked = rng.sample(range(names.pairs * rounds), need)
    initial = sorted(picked[:rows], key=names.sort_key)
    scores = [rng.randrange(1001) for _ in range(rows)]
    courses = [rng.choice(COURSES) for _ in range(rows)]
    table = [(*names.name(i), courses[k], fmt_score(scores[k])) for k, i in enumerate(initial)]
    touched = rng.sample(range(rows), n_change + n_delete)
    changed = []
    for k in sorted(touched[:n_change]):
        new = (scores[k] + 1 + rng.randrange(1000)) % 1001  # always differs from the old one
        changed.append((*table[k][:3], fmt_score(new)))
    deleted = [table[k] for k in sorted(touched[n_change:])]
    inserted = [
        (*names.name(i), rng.choice(COURSES), fmt_score(rng.randrange(1001)))
        for i in sorted(picked[rows:], key=names.sort_key)
    ]
    return Plan(table, changed, deleted, inserted)


def load_rows(server: Server, table: str, rows: Iterable[Sequence[str]], columns: str) -> None:
    """Bulk-load rows via a temp TSV file and LOAD DATA LOCAL INFILE."""
    fd, path = tempfile.mkstemp(prefix="bench-", suffix=".tsv")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines("\t".join(r) + "\n" for r in rows)
        server.execute(
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} CHARACTER SET utf8mb4"
            f" FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' ({columns})"
        )
    finally:
        os.unlink(path)


def create_students(server: Server, table: str) -> None:
    """Create an empty students table with the canonical DDL."""
    server.execute(TABLE_DDL.format(table=table))


def load_initial(server: Server, plan: Plan, source: str, snapshot: str) -> None:
    """Fill the source table and keep a pristine copy for resetting baseline targets."""
    create_students(server, source)
    load_rows(server, source, plan.rows, "first_name, last_name, course, score")
    server.execute(
        f"CREATE TABLE {snapshot} LIKE {source}", f"INSERT INTO {snapshot} SELECT * FROM {source}"
    )


def apply_changes(server: Server, plan: Plan, source: str, aux_prefix: str) -> str:
    """Apply the change set to the source; return the table of deleted keys (for checks)."""
    changes, deletes = f"{aux_prefix}_changed", f"{aux_prefix}_deleted"
    for table, rows in ((changes, plan.changed), (deletes, plan.deleted)):
        server.execute(KEY_DDL.format(table=table))
        load_rows(server, table, ((r[0], r[1], r[3]) for r in rows), "first_name, last_name, score")
    server.execute(
        f"UPDATE {source} s JOIN {changes} c USING (first_name, last_name) SET s.score = c.score",
        f"DELETE s FROM {source} s JOIN {deletes} d USING (first_name, last_name)",
        database=source.split(".")[0],
    )
    load_rows(server, source, plan.inserted, "first_name, last_name, course, score")
    return deletes
