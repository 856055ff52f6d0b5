"""Logging set-up: structlog for our events, stdlib loggers (APScheduler, SQLAlchemy) alike.

JSON lines when output is not a terminal (or when configured), readable console lines
at one. Every rendered line passes through a redactor that masks the configured
passwords, so a secret cannot leak through a log line or a formatted traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor


class Redactor:
    """Masks known secrets in text; built once from the configuration's passwords."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def configure_logging(
    fmt: str, level: str, redactor: Redactor, stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr) in one format."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if use_json:
        final += [structlog.processors.dict_tracebacks]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[*final, renderer, _redact_rendered(redactor)],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # SQLAlchemy's engine logger echoes parameters (row values); keep it quiet unless asked.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(max(logging.INFO, root.level))
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _redact_rendered(redactor: Redactor) -> Processor:
    """A last processor: the rendered line, secrets masked."""

    def redact(_logger: Any, _name: str, line: EventDict | str) -> Any:
        if isinstance(line, str):
            return redactor(line)
        return line

    return redact


def redact_event(redactor: Redactor) -> Processor:
    """Mask secrets in every string value of an event (for non-rendering pipelines)."""

    def processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        return {k: redactor(v) if isinstance(v, str) else v for k, v in event.items()}

    return processor
