"""Every error the tool raises on purpose, with the exit code it maps to.

Each error builds its message from the facts it carries, so the CLI can print
``str(error)`` as the one line an operator reads.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_REJECTED = 3
EXIT_LOCKED = 4
EXIT_DRIFT = 5
"""``verify`` found keys on which the source and the target disagree."""
EXIT_INTERRUPTED = 130
"""A stop was requested (SIGTERM/SIGINT) and honoured after a committed batch."""


class EtlError(Exception):
    """Base of the tool's own errors; ``transient`` says whether a retry can help."""

    exit_code = EXIT_FAILURE
    transient = False


class ConfigError(EtlError):
    """Raised when configuration, the command line or the databases' shape is wrong."""

    exit_code = EXIT_CONFIG


class DatabaseUnreachable(ConfigError):
    """Raised when a configured database cannot be connected to at start-up."""

    transient = True

    def __init__(self, role: str, where: str, reason: str) -> None:
        self.role, self.where, self.reason = role, where, reason
        super().__init__(f"{role} database {where} is unreachable: {reason}")


class TableMissing(ConfigError):
    """Raised when a job's source table does not exist."""

    def __init__(self, role: str, table: str, where: str) -> None:
        self.role, self.table, self.where = role, table, where
        super().__init__(f"{role} table {table!r} does not exist in {where}")


class UnknownJob(ConfigError):
    """Raised when the command line names a job that is not registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"unknown job {name!r}; known jobs: {', '.join(sorted(known))}")


class MassDeleteRefused(EtlError):
    """Raised before a run deletes more of the target than the configured share allows."""

    def __init__(self, job: str, would_delete: int, target_rows: int, limit: float) -> None:
        self.job, self.would_delete, self.target_rows, self.limit = (
            job,
            would_delete,
            target_rows,
            limit,
        )
        share = would_delete / target_rows if target_rows else 1.0
        super().__init__(
            f"job {job!r} refused to delete {would_delete} of {target_rows} target rows "
            f"({share:.0%} > limit {limit:.0%}); nothing more was deleted. If the source "
            "really lost those rows, rerun with --allow-mass-delete "
            "(or raise sync.max_delete_fraction)"
        )


class LockBusy(EtlError):
    """Raised when another process holds the job's run lock."""

    exit_code = EXIT_LOCKED

    def __init__(self, job: str) -> None:
        self.job = job
        super().__init__(f"job {job!r} is already running in another process; skipped")


class LockLost(EtlError):
    """Raised inside a run whose lock connection ended: another process may now run the job."""

    def __init__(self, job: str) -> None:
        self.job = job
        super().__init__(
            f"job {job!r} lost its run lock in the target (the lock's connection ended); "
            "stopped after the last committed batch so that two runs never write at once"
        )


class Interrupted(EtlError):
    """Raised inside a run when a stop was requested; the last batch has committed."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, job: str) -> None:
        self.job = job
        super().__init__(f"job {job!r} stopped on request after its last committed batch")
