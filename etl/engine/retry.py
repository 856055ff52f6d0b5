"""Which database errors a retry can cure, and retrying a whole batch until a budget runs out.

Three kinds of failure matter to the engine:

* ``transient``: the database or the network had a bad moment (deadlock, lock wait
  timeout, lost or refused connection, server shutting down). Redoing the whole batch
  (source read and target transaction) is safe because writes are by key and the
  checkpoint commits with them; it is worth it because the next attempt usually works.
* ``data``: the target refused one or more rows (constraint, trigger, value out of
  range). Retrying the same rows cannot help; splitting the batch can (``etl.engine.batches``).
* ``permanent``: everything else (syntax, permissions, missing tables, bugs): fail now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from etl.config import RetrySettings
from etl.dialects import every_dialect
from etl.dialects.types import ErrorKind
from etl.errors import EtlError

log = structlog.get_logger("etl.retry")

Kind = ErrorKind
T = TypeVar("T")


def classify(error: BaseException) -> Kind:
    """Whether a retry can help (``transient``), splitting the batch can (``data``), or neither.

    Each dialect knows its own driver's errors (error numbers, SQLSTATEs); the first
    that recognises the error decides.
    """
    if isinstance(error, EtlError):
        return "transient" if error.transient else "permanent"
    if isinstance(error, PoolTimeout):
        return "transient"
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return "transient"
        if error.orig is None:
            return "permanent"
        error = error.orig
    for dialect in every_dialect():
        kind = dialect.classify(error)
        if kind is not None:
            return kind
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        # Imported here, like every_dialect() above: only a failure needs every database.
        from etl.dialects.postgresql import classify_sqlstate

        return classify_sqlstate(sqlstate)  # another driver that speaks SQLSTATE
    if isinstance(error, ConnectionError | TimeoutError):
        return "transient"
    return "permanent"


def is_transient(error: BaseException) -> bool:
    """True when redoing the same work later may succeed."""
    return classify(error) == "transient"


def is_data_error(error: BaseException) -> bool:
    """True when the target refused some of the rows written."""
    return classify(error) == "data"


def with_retries(
    policy: RetrySettings,
    work: Callable[[], T],
    *,
    describe: Callable[[BaseException], str],
    sleep: Callable[[float], None] | None = None,
    **context: Any,
) -> T:
    """Run ``work``; after a transient error wait and run it again, within the policy's budget.

    Every retry is logged as ``batch_retry`` with ``context`` (phase, key range). The last
    error is re-raised as it was when the budget runs out or the error is not transient.
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "batch_retry",
            attempt=state.attempt_number,
            error=describe(error) if error else None,
            sleep=round(state.upcoming_sleep, 3),
            **context,
        )

    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(max(policy.attempts, 1)) | stop_before_delay(policy.total_seconds),
        wait=wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)
        + wait_random(0, policy.jitter),
        before_sleep=before_sleep,
        reraise=True,
        **extra,
    )
    return retrying(work)
