"""Deterministic demo data: a realistic set of students for the embedded source.

The same seed always gives the same rows, so the README's first command shows the
same figures on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from sqlalchemy import Engine, Table, delete, func, insert, select

from etl.errors import ConfigError

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Alice",
    "Amara",
    "Ana",
    "Anna",
    "Aiko",
    "Björn",
    "Carlos",
    "Chen",
    "Chloé",
    "Dmitri",
    "Elif",
    "Emma",
    "Fatima",
    "François",
    "Grace",
    "Hana",
    "Hiro",
    "Ines",
    "Ivan",
    "Jamal",
    "Jana",
    "Jorge",
    "José",
    "Juan",
    "Kai",
    "Kateřina",
    "Lars",
    "Leila",
    "Liam",
    "Lucía",
    "Maya",
    "Mei",
    "Mohammed",
    "Nadia",
    "Noah",
    "Nora",
    "Olga",
    "Omar",
    "Priya",
    "Rahul",
    "Rosa",
    "Sakura",
    "Sara",
    "Søren",
    "Tariq",
    "Tomás",
    "Yara",
    "Zoë",
    "Zeynep",
]
LAST_NAMES = [
    "Abe",
    "Ali",
    "Andersen",
    "Brown",
    "Chen",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fernández",
    "García",
    "Gonzalez",
    "Haddad",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Kim",
    "Kowalski",
    "Lee",
    "Li",
    "Martin",
    "Müller",
    "Nakamura",
    "Nguyen",
    "Novak",
    "O'Brien",
    "Okafor",
    "Patel",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Smith",
    "Suzuki",
    "Tanaka",
    "Taylor",
    "Van",
    "der",
    "Berg",
    "Wang",
    "Weber",
    "Williams",
    "Wójcik",
    "Yamamoto",
    "Yılmaz",
    "Zhang",
]
COURSES = (
    "Algebra",
    "Art History",
    "Biology",
    "Chemistry",
    "Computer Science",
    "Economics",
    "English Literature",
    "Geography",
    "History",
    "Music",
    "Philosophy",
    "Physics",
)


def students(count: int, seed: int = 42) -> Iterator[dict[str, object]]:
    """``count`` distinct students; names get a numeric suffix once pairs run out."""
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    pairs = len(FIRST_NAMES) * len(LAST_NAMES)
    while len(seen) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if len(seen) >= pairs * 0.8:
            last = f"{last}-{rng.randrange(1, 10**6)}"
        if (first, last) in seen:
            continue
        seen.add((first, last))
        yield {
            "first_name": first,
            "last_name": last,
            "course": rng.choice(COURSES),
            "score": round(rng.uniform(35.0, 100.0), 1),
        }


def fill(engine: Engine, table: Table, count: int, seed: int = 42, replace: bool = False) -> int:
    """Fill the table with ``count`` demo students (creating it if missing).

    A table that already holds rows is only emptied first when ``replace`` says so:
    pointed at a real source by mistake, ``demo`` must not wipe it.
    """
    table.create(engine, checkfirst=True)
    rows = list(students(count, seed))
    with engine.begin() as connection:
        existing = connection.execute(select(func.count()).select_from(table)).scalar_one()
        if existing and not replace:
            raise ConfigError(
                f"source table {table.name!r} already holds {existing:,} rows; "
                "`demo --replace` replaces them with demo students"
            )
        connection.execute(delete(table))
        for start in range(0, len(rows), 5000):
            connection.execute(insert(table), rows[start : start + 5000])
    return len(rows)
