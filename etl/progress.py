"""A progress bar with rows/s for runs at a terminal; nothing at all otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tqdm import tqdm

from etl.sync import BatchDone


@contextmanager
def progress_reporter(stream: TextIO, job: str) -> Iterator[Callable[[BatchDone], None] | None]:
    """Yield a batch callback that advances a bar, or None when ``stream`` is no terminal."""
    if not stream.isatty():
        yield None
        return
    bars: list[tqdm[Any]] = []  # made at the first batch, when the total is known

    def advance(batch: BatchDone) -> None:
        if not bars:
            bars.append(
                tqdm(
                    total=batch.total_source_rows,
                    desc=job,
                    unit=" rows",
                    unit_scale=True,
                    file=stream,
                    leave=False,
                    dynamic_ncols=True,
                )
            )
        bars[0].update(batch.counts.rows_read)

    try:
        yield advance
    finally:
        for bar in bars:
            bar.close()
