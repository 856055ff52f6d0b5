"""The command line: ``python -m etl`` and the ``etl`` script."""

from etl.cli.main import main

__all__ = ["main"]
