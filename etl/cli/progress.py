"""A progress bar with rows/s for runs at a terminal; nothing at all otherwise."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from etl.engine.results import BatchDone

if TYPE_CHECKING:
    from tqdm import tqdm


@contextmanager
def progress_reporter(stream: TextIO, job: str) -> Iterator[Callable[[BatchDone], None] | None]:
    """Yield a batch callback that advances a bar, or None when ``stream`` is no terminal."""
    if not stream.isatty():
        yield None
        return
    from tqdm import tqdm  # here: only a terminal shows a bar, and tqdm costs start-up time

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
                    # A terminal that reports no size (a bare pty) would get no bar at all.
                    ncols=None if _width(stream) else 100,
                    nrows=None if _width(stream) else 24,
                    dynamic_ncols=bool(_width(stream)),
                )
            )
        bars[0].update(batch.counts.rows_read)

    try:
        yield advance
    finally:
        for bar in bars:
            bar.close()


def _width(stream: TextIO) -> int:
    """The terminal's width in columns; 0 when it does not say."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0
