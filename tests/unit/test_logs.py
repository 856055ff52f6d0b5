"""Logging: secrets masked in every rendered line, tracebacks included."""

from __future__ import annotations

import io
import json

import structlog

from etl.logs import Redactor, configure_logging


def test_rendered_lines_never_show_a_configured_password() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", Redactor(["hunter22"]), stream=stream)
    log = structlog.get_logger("test")
    log.info("connecting", url="mysql://u:hunter22@h/db")
    try:
        raise RuntimeError("login hunter22 failed")
    except RuntimeError:
        log.exception("failed")
    output = stream.getvalue()
    assert "hunter22" not in output
    assert "***" in output
    assert [json.loads(line)["event"] for line in output.splitlines()] == ["connecting", "failed"]


def test_short_or_empty_secrets_are_not_masked_everywhere() -> None:
    """An empty password must not turn every line into asterisks."""
    redact = Redactor(["", None, "ab"])
    assert redact("about") == "about"
