"""Which source-to-target column pairs are refused before any row is read.

The rule: a pair is refused up front when (almost) no value could arrive unchanged,
because the kinds differ (a float into an integer, text into a date, a date into a
datetime, which would never compare equal again). Where some values fit and others
do not (a
narrower integer, fewer decimal digits, a shorter string or binary, a duration into a
time of day, fewer fractional seconds, NUL characters, text that is not JSON, a
double beyond a 4-byte float's range; a double into a 4-byte float column is
compared as the 4-byte float the column stores), each
row is checked and the ones that do not fit are rejected with the reason
(:mod:`etl.core.validate`).
"""

from __future__ import annotations

from etl.core.validate import ColumnSpec

TARGETS: dict[str, frozenset[str]] = {
    "integer": frozenset({"integer", "boolean", "decimal"}),
    "boolean": frozenset({"boolean", "integer"}),
    "decimal": frozenset({"decimal"}),
    "float": frozenset({"float"}),
    "string": frozenset({"string", "json", "uuid"}),
    "json": frozenset({"json", "string"}),
    "uuid": frozenset({"uuid", "string", "bytes"}),
    "bytes": frozenset({"bytes"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"datetime"}),
    "time": frozenset({"time"}),
}
"""Per source kind, the target kinds its values can go into exactly (row checks aside)."""


def lossy(source: ColumnSpec, target: ColumnSpec) -> str | None:
    """Why every (or nearly every) value of ``source`` would change in ``target``; None: fine."""
    if source.kind == "other" or target.kind == "other":
        return None  # nothing known: the row checks and the database decide
    if target.kind not in TARGETS.get(source.kind, frozenset({source.kind})):
        article = "an" if source.kind[0] in "aeiou" else "a"
        return (
            f"{article} {source.kind} column's values cannot go into a {target.kind} column exactly"
        )
    return None
