"""Keys that databases compare differently: case, accents and trailing spaces.

MySQL's default collations call 'anna' = 'Anna' = 'ánna' and ignore trailing spaces;
PostgreSQL and SQLite tell them all apart. Whatever the pairing, the target must end
up holding exactly the source's keys, spelled exactly as in the source.
"""

from __future__ import annotations

import pytest
from sqlalchemy import String, text

from etl.errors import ConfigError
from tests.helpers.support import DatabasePair, same_floats

# Distinct under a binary collation, but pairwise equal under MySQL's *_ci ones.
CASE_SENSITIVE_KEYS = [
    ("anna", "smith", "A", 1.0),
    ("Anna", "Smith", "B", 2.0),
    ("ANNA", "SMITH", "C", 3.0),
    ("José", "Núñez", "D", 4.0),
    ("Jose", "Nunez", "E", 5.0),
    ("Bob", "Lee", "F", 6.0),
    ("Bob ", "Lee", "G", 7.0),
    ("Straße", "Groß", "H", 8.0),
    ("Zoë", "Ångström", "I", 9.0),
    ("zoe", "angstrom", "J", 10.0),
]
# One of each family: what a MySQL source with a case-insensitive key can hold.
CASE_INSENSITIVE_KEYS = [
    ("Anna", "Smith", "B", 2.0),
    ("José", "Núñez", "D", 4.0),
    ("Bob ", "Lee", "G", 7.0),
    ("Straße", "Groß", "H", 8.0),
    ("Zoë", "Ångström", "I", 9.0),
    ("Émile", "Zola", "K", 11.0),
    ("émile", "zolá-2", "L", 12.0),
]
FILLER = [(f"N{i:03d}", f"m{i % 5}", "X", float(i)) for i in range(40)]


def exact_sources(pair: DatabasePair) -> bool:
    return pair.source_backend != "mariadb"


@pytest.mark.parametrize("batch_size", [3, 1000])
def test_every_distinct_source_key_arrives_spelled_exactly(
    dbs: DatabasePair, batch_size: int
) -> None:
    """Case, accent and trailing-space variants all arrive; a rerun changes nothing."""
    rows = CASE_SENSITIVE_KEYS if exact_sources(dbs) else CASE_INSENSITIVE_KEYS
    dbs.create_source([*rows, *FILLER])
    first = dbs.run(batch_size=batch_size)
    assert first.status == "succeeded", first.error
    assert same_floats(dbs.rows("target"), dbs.rows("source"))
    again = dbs.run(batch_size=batch_size)
    assert (again.counts.inserted, again.counts.updated, again.counts.deleted) == (0, 0, 0)


def test_a_key_respelled_in_the_source_is_respelled_in_the_target(dbs: DatabasePair) -> None:
    """Changing only the case or accents of a key replaces the target's spelling."""
    dbs.create_source([*CASE_INSENSITIVE_KEYS, *FILLER])
    dbs.run(batch_size=4)
    dbs.execute("source", "UPDATE students SET first_name = 'ANNA' WHERE last_name = 'Smith'")
    dbs.execute("source", "UPDATE students SET first_name = 'Bob' WHERE last_name = 'Lee'")
    result = dbs.run(batch_size=4)
    assert result.status == "succeeded", result.error
    target = dbs.rows("target")
    assert same_floats(target, dbs.rows("source"))
    names = {row[0] for row in target}
    assert "ANNA" in names
    assert "Anna" not in names
    assert "Bob" in names
    assert "Bob " not in names


def test_keys_ordered_differently_on_each_side_still_converge(
    maria: DatabasePair, postgres_urls: tuple[str, str]
) -> None:
    """A PostgreSQL source sorted by a linguistic collation against a binary target.

    'apple' < 'Banana' linguistically but not by code point, so key ranges disagree;
    the engine must look keys up instead, and still propagate deletes.
    """
    from tests.helpers.support import DatabasePair as Pair

    pair = Pair("postgresql", "mariadb", postgres_urls[0], maria.target_url)
    try:
        words = ["apple", "Banana", "cherry", "Date", "éclair", "Eclair", "fig", "Grape"]
        rows = [(w, f"x{i}", "C", float(i)) for i, w in enumerate(words * 3)]
        rows = [(w, f"x{i}", "C", float(i)) for i, (w, _, _, _) in enumerate(rows)]
        pair.create_source(rows, key_collation="en-x-icu")
        result = pair.run(batch_size=4)
        assert result.mode == "lookup"
        assert same_floats(pair.rows("target"), pair.rows("source"))
        pair.execute("source", "DELETE FROM students WHERE first_name IN ('apple', 'Grape')")
        pair.execute("source", "UPDATE students SET score = -1 WHERE first_name = 'Date'")
        again = pair.run(batch_size=4)
        assert again.counts.deleted == 6
        assert again.counts.updated == 3
        assert same_floats(pair.rows("target"), pair.rows("source"))
    finally:
        pair.dispose()
        from tests.helpers.support import drop_all_tables

        drop_all_tables(pair.source_url)


def test_a_target_that_would_merge_distinct_source_keys_is_refused(
    maria: DatabasePair, postgres_urls: tuple[str, str]
) -> None:
    """A case-insensitive target cannot mirror a case-sensitive source: say so up front."""
    from tests.helpers.support import DatabasePair as Pair
    from tests.helpers.support import drop_all_tables

    pair = Pair("postgresql", "mariadb", postgres_urls[0], maria.target_url)
    try:
        pair.create_source(CASE_SENSITIVE_KEYS)
        pair.students_table(key_collation="utf8mb4_general_ci").create(pair.engine("target"))
        with pytest.raises(ConfigError, match="can disagree on which keys are equal"):
            pair.run()
        assert pair.rows("target") == []
    finally:
        pair.dispose()
        drop_all_tables(pair.source_url)


def test_a_hand_made_target_with_the_sources_collation_is_used_as_is(maria: DatabasePair) -> None:
    """MariaDB to MariaDB with the same case-insensitive keys: key ranges agree."""
    maria.create_source(CASE_INSENSITIVE_KEYS, key_collation="utf8mb4_unicode_ci")
    maria.students_table(key_collation="utf8mb4_unicode_ci").create(maria.engine("target"))
    result = maria.run(batch_size=2)
    assert result.mode == "range"
    assert same_floats(maria.rows("target"), maria.rows("source"))


def test_created_target_keeps_a_mariadb_sources_collation(maria: DatabasePair) -> None:
    """The target table made by the tool orders keys like its MariaDB source."""
    maria.create_source(CASE_INSENSITIVE_KEYS, key_collation="utf8mb4_unicode_ci")
    maria.run()
    with maria.engine("target").connect() as connection:
        found = connection.execute(
            text(
                "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                "DATABASE() AND TABLE_NAME = 'students' AND COLUMN_NAME = 'first_name'"
            )
        ).scalar_one()
    assert found == "utf8mb4_unicode_ci"


def test_many_keys_respelled_in_one_range_all_survive(maria: DatabasePair) -> None:
    """More respelled keys than a batch: every delete goes before every upsert.

    Under a case-insensitive collation 'S00040' and 's00040' are one row with two
    spellings; were the old spelling deleted after the new one was upserted, the row
    would be lost.
    """
    rows = [(f"S{i:05d}", f"L{i % 7}", "C", float(i)) for i in range(200)]
    maria.create_source(rows)
    maria.run(batch_size=20)
    maria.execute(
        "source",
        "UPDATE students SET first_name = LOWER(first_name) "
        "WHERE first_name BETWEEN 'S00040' AND 'S00079'",
    )
    result = maria.run(batch_size=20)
    assert result.status == "succeeded", result.error
    assert maria.rows("target") == maria.rows("source")
    assert len(maria.rows("target")) == 200


def test_a_rejected_row_keeps_its_target_copy_spelled_otherwise(maria: DatabasePair) -> None:
    """A source row respelled and made unfit is set aside; its old target copy stays."""
    maria.create_source([("Anna", "Smith", "Maths", 1.0), ("Bob", "Lee", "Art", 2.0)])
    target = maria.students_table()
    target.c.course.type = String(10)
    target.create(maria.engine("target"))
    maria.run()
    maria.execute(
        "source",
        "UPDATE students SET first_name = 'anna', course = 'a course name too long' "
        "WHERE first_name = 'Anna'",
    )
    result = maria.run()
    assert result.counts.rejected == 1
    assert result.counts.deleted == 0
    assert ("Anna", "Smith", "Maths", 1.0) in maria.rows("target")
