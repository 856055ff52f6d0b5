"""How PostgreSQL hashes rows for range checksums between PostgreSQL servers (SQL text).

Values as text with '#' doubled, NULL as '#0'; md5 for tokens, the 64-bit
``hashtextextended`` for summaries. Across kinds see :mod:`etl.dialects.text_hashing`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from etl.core.lines import NULL_TEXT, SEPARATOR_TEXT
from etl.dialects.types import KEY_HASH_DIGITS, Quote


class _Hashing:
    """md5 for tokens, the 64-bit ``hashtextextended`` for summaries."""

    name = "postgresql"
    portable = False

    def key_hash(self, quote: Quote, key: Sequence[str]) -> str:
        return f"substr(md5({_parts(quote, key)}), 1, {KEY_HASH_DIGITS})"

    def row_hash(self, quote: Quote, columns: Sequence[str]) -> str:
        return f"substr(md5({_parts(quote, columns)}), 1, {KEY_HASH_DIGITS})"

    def row_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        # hashtextextended (the hash behind hash partitioning, stable across versions)
        # costs the server less than half of md5; sum() of bigint is numeric, so it
        # cannot overflow. COLLATE "C": a plain byte hash, whatever the collation.
        return [f'hashtextextended(({_parts(quote, columns)}) COLLATE "C", 0)']

    def bucket(self, quote: Quote, key: Sequence[str], buckets: int) -> str:
        digest = f"('x' || substr(md5({_parts(quote, key)}), 1, 8))::bit(32)::bigint"
        return f"mod({digest}, {int(buckets)})"

    def tokens(self, key_hash: str, row_hash: str) -> str:
        return f"string_agg({key_hash} || ':' || {row_hash}, ',')"

    def prepare_tokens(self, session: Session) -> None:
        """Nothing: string_agg has no length limit short of 1 GB."""

    def table_checksum(self, table: str) -> str | None:
        return None

    def table_sums(self, quote: Quote, columns: Sequence[str]) -> list[str]:
        return []

    def lines(self, quote: Quote, columns: Sequence[str], limit: int) -> str | None:
        """None: not yet read by lines between PostgreSQL servers."""
        return None

    def prepare_lines(self, session: Session, limit: int) -> int | None:
        """Nothing: no lines."""
        return None


HASHING = _Hashing()


def _parts(quote: Quote, columns: Sequence[str]) -> str:
    """The values as text, '#' doubled, NULL as '#0', joined by '#,' (as
    :mod:`etl.core.lines` writes rows: one ``replace`` costs less than a length)."""
    parts = ", ".join(
        f"COALESCE(replace({quote(name)}::text, '#', '##'), '{NULL_TEXT}')" for name in columns
    )
    return f"concat_ws('{SEPARATOR_TEXT}', {parts})"
