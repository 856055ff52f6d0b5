"""Worker threads per run: the source's half of a batch while the target does its own.

Two databases (or two cores of one server) work at once, and the client's share,
mostly waiting on sockets, releases the GIL. Each side has its own session. Work
started ahead (the next range, read while this one is written) runs in threads of its
own, and may itself wait on a source half; source halves never wait on anything and
have threads of their own, so no wait can ever take the last thread. No query may
outlive the run: work started ahead that no batch uses is cancelled if it has not
begun, and waited for if it has.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from etl.engine.db import Databases

T = TypeVar("T")
U = TypeVar("U")


class Ahead(Generic[T]):
    """One piece of work started ahead for a known argument, used only for that argument."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._pending: tuple[Hashable, Future[T]] | None = None

    def start(self, argument: Hashable, work: Callable[[], T]) -> None:
        """Begin ``work`` for ``argument`` in the background, instead of any pending."""
        self.cancel()
        self._pending = (argument, self._pool.submit(work))

    def ensure(self, argument: Hashable, work: Callable[[], T]) -> None:
        """Begin ``work`` for ``argument`` unless it is pending already (a guess that held)."""
        if self._pending is None or self._pending[0] != argument:
            self.start(argument, work)

    def take(self, argument: Hashable, work: Callable[[], T]) -> T:
        """The work started for ``argument``, or ``work()`` now if none was."""
        pending, self._pending = self._pending, None
        if pending is not None:
            if pending[0] == argument:
                return pending[1].result()
            pending[1].cancel()  # a guess that missed: no use running it now
        return work()

    def cancel(self) -> None:
        """Drop the pending work (cancelled if it has not begun)."""
        if self._pending is not None:
            self._pending[1].cancel()
        self._pending = None


class Workers:
    """The run's worker threads: ``with Workers(dbs) as workers:`` for one pass."""

    def __init__(self, dbs: Databases) -> None:
        self.dbs = dbs
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="etl-ahead")
        """Work started ahead, and streams (buckets): these may wait on source halves."""
        self._halves = ThreadPoolExecutor(max_workers=3, thread_name_prefix="etl-source")
        """Source halves only: each runs its query and returns, waiting on nothing."""
        self._aheads: list[Ahead[object]] = []

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_: object) -> None:
        for ahead in self._aheads:
            ahead.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)  # may still wait on halves
        self._halves.shutdown(wait=True, cancel_futures=True)

    def ahead(self) -> Ahead[T]:
        """A slot for work started ahead; cancelled when the pass ends."""
        slot: Ahead[T] = Ahead(self._pool)
        self._aheads.append(slot)  # type: ignore[arg-type]
        return slot

    def on_source(self, work: Callable[[Session], T]) -> Future[T]:
        """``work`` on a source session of its own, in a worker thread."""

        def source_side() -> T:
            with self.dbs.Source() as source:
                return work(source)

        return self._halves.submit(source_side)

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """``work`` in a worker thread (it opens whatever sessions it needs)."""
        return self._pool.submit(work)

    def on_both(
        self,
        on_source: Callable[[Session], T],
        on_target: Callable[[Session], U],
        *,
        target: Session | None = None,
    ) -> tuple[T, U]:
        """The source's work in a worker thread while the target's runs here."""
        future = self.on_source(on_source)
        try:
            if target is not None:
                ours = on_target(target)
            else:
                with self.dbs.Target() as session:
                    ours = on_target(session)
        except BaseException:
            future.exception()  # wait for it: no query may outlive the attempt
            raise
        return future.result(), ours
