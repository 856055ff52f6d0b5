"""Several jobs in one process at once: a pool of ``sync.workers`` threads over the jobs.

Each job runs on its own thread with its own sessions from the shared sessionmakers
(the engines' pools are sized for the workers, :func:`etl.engine.db.make_engine`), its
own lock, checkpoint and run record. One job's failure is its own: it is reported with
the job's name and the others carry on. A stop request lets the jobs in flight finish
their batch and starts no more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from etl.engine.results import RunResult
from etl.job import Job


@dataclass(frozen=True)
class Outcome:
    """How one job's turn ended: a result, or the error that kept it from one."""

    job: Job
    result: RunResult | None = None
    error: BaseException | None = None
    skipped: bool = False
    """Never started: a stop was requested first."""


def run_concurrently(
    jobs: Sequence[Job],
    run: Callable[[Job], RunResult],
    *,
    workers: int,
    stop: threading.Event,
) -> Iterator[Outcome]:
    """Run ``run(job)`` for every job, ``workers`` at a time; yield outcomes as they end."""

    def turn(job: Job) -> Outcome:
        if stop.is_set():
            return Outcome(job, skipped=True)
        try:
            return Outcome(job, result=run(job))
        except Exception as error:  # this job's problem only: reported, the others go on
            return Outcome(job, error=error)

    pool = ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(jobs))), thread_name_prefix="etl-job"
    )
    try:
        futures: list[Future[Outcome]] = [pool.submit(turn, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=False)
