"""The command line: parse, load settings, set up logging, hand over, map to exit codes.

Exit codes: 0 success; 1 a run failed or was refused; 2 bad configuration, usage or
database setup; 3 runs finished but rows were set aside as rejects; 4 the job was
already running elsewhere (the lock was held); 5 ``verify`` found drift; 130 stopped
by SIGTERM/SIGINT after a committed batch (the next run resumes there).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

import structlog
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from etl.config import Settings, load_settings
from etl.errors import (
    EXIT_CONFIG,
    ConfigError,
    EtlError,
)
from etl.logs import Redactor, configure_logging

log = structlog.get_logger("etl.cli")

Handler = Callable[[argparse.Namespace, Settings, Redactor], int]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        settings = load_settings(args.config, environ)
    except ConfigError as error:
        return _fail(error, Redactor([]), EXIT_CONFIG)
    redactor = Redactor(_secrets(settings))
    configure_logging(args.log_format or settings.log.format, settings.log.level, redactor)
    handler = _handler(args.handler)
    try:
        return handler(args, settings, redactor)
    except EtlError as error:
        return _fail(error, redactor, error.exit_code)
    except KeyboardInterrupt:
        print("etl: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The parser for every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $ETL_CONFIG, "
        "else config/etl.toml if present, else built-in SQLite defaults)",
    )
    common.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        help="log line format (default: from config, auto)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m etl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[common], help="run jobs once")
    run.add_argument("jobs", nargs="*", metavar="JOB", help="jobs to run (default: all enabled)")
    run.add_argument(
        "--dry-run", action="store_true", help="report what would change, write nothing"
    )
    run.add_argument("--batch-size", type=_positive_int, metavar="N", help="rows per batch")
    run.add_argument(
        "--incremental",
        action="store_true",
        help="only rows changed since the last watermark (jobs with a cursor column; "
        "deletes wait for the next full run)",
    )
    run.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="let this run delete more than sync.max_delete_fraction of the target",
    )
    run.set_defaults(handler="etl.cli.run:cmd_run")

    daemon = commands.add_parser(
        "daemon", parents=[common], help="run enabled jobs on their schedules until stopped"
    )
    daemon.set_defaults(handler="etl.cli.commands:cmd_daemon")

    jobs = commands.add_parser(
        "jobs", parents=[common], help="list jobs, their schedules and next run times"
    )
    jobs.set_defaults(handler="etl.cli.commands:cmd_jobs")

    status = commands.add_parser("status", parents=[common], help="show recent runs")
    status.add_argument("--job", help="only this job")
    status.add_argument("--limit", type=_positive_int, default=20, metavar="N")
    status.set_defaults(handler="etl.cli.commands:cmd_status")

    rejects = commands.add_parser("rejects", parents=[common], help="show rows set aside")
    rejects.add_argument("job", nargs="?", help="only this job")
    rejects.add_argument("--limit", type=_positive_int, default=50, metavar="N")
    rejects.set_defaults(handler="etl.cli.commands:cmd_rejects")

    verify = commands.add_parser(
        "verify", parents=[common], help="compare source and target; exit 5 on drift"
    )
    verify.add_argument("jobs", nargs="*", metavar="JOB", help="jobs (default: all enabled)")
    verify.add_argument(
        "--limit", type=_positive_int, default=50, metavar="N", help="differing keys to print"
    )
    verify.add_argument("--batch-size", type=_positive_int, metavar="N", help="keys per range")
    verify.set_defaults(handler="etl.cli.commands:cmd_verify")

    demo = commands.add_parser(
        "demo", parents=[common], help="fill the source with a job's deterministic demo rows"
    )
    demo.add_argument("job", nargs="?", help="the job (default: the first that has demo data)")
    demo.add_argument("--rows", type=_positive_int, default=10_000, metavar="N")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument(
        "--replace", action="store_true", help="replace rows the source table already holds"
    )
    demo.set_defaults(handler="etl.cli.commands:cmd_demo")
    return parser


def _handler(reference: str) -> Handler:
    """The command's function, ``module:name``: only the chosen command's modules are imported.

    A ``run`` then loads neither the verifier nor the scheduler's triggers, nor ``jobs``
    and ``status`` the whole sync engine.
    """
    module, _, name = reference.partition(":")
    # What is imported (SQLAlchemy, the engine) lives as long as the process: no collector
    # pass while importing it, and none over it afterwards (frozen). Each full pass walked
    # it all, and so did the interpreter's exit: 0.1-0.2 s after a run's last batch.
    collecting = gc.isenabled()
    gc.disable()
    try:
        handler: Handler = getattr(importlib.import_module(module), name)
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    return handler


def _fail(error: BaseException, redactor: Redactor, code: int, stream: TextIO = sys.stderr) -> int:
    print(redactor(f"etl: error: {error}"), file=stream)
    return code


def _secrets(settings: Settings) -> list[str | None]:
    found: list[str | None] = [settings.source.password, settings.target.password]
    for db in (settings.source, settings.target):
        with contextlib.suppress(ArgumentError):
            found.append(make_url(db.url).password)
    return found


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value
