"""Which code of the sync is measured: the working tree, or a pinned git ref.

The working tree may be mid-edit while a long run goes on (a 1M-row run takes a while, and
each scenario starts a fresh interpreter), so `--sync-ref REF` exports REF's `etl/`,
`jobs/` and `config/` into a temporary directory and runs `python -m etl` from there:
`-m` puts the current directory first on sys.path, ahead of the editable install.

Either way the code is byte-compiled first, as pip compiles a package it installs:
under ``PYTHONDONTWRITEBYTECODE`` (set on these machines, and in the Dockerfile) each
run would otherwise compile every module of `etl/` from source again, 0.1-0.3 s of a
run's start that no installed copy pays.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.runners import ROOT

EXPORTED = ("etl", "jobs", "config")


def _git(*args: str) -> str:
    """Run git in the repository; stdout stripped."""
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def describe(ref: str | None) -> str:
    """Human-readable identity of the measured code, for the JSON and README."""
    if ref is not None:
        return f"{ref} = {_git('rev-parse', '--short', ref + '^{commit}')}"
    head = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", *EXPORTED)
    return f"working tree at {head}" + (" + uncommitted changes" if dirty else "")


def has_cli(ref: str | None) -> bool:
    """Whether `python -m etl` exists in that code."""
    if ref is None:
        return (ROOT / "etl" / "__main__.py").exists()
    try:
        _git("cat-file", "-e", f"{ref}:etl/__main__.py")
    except ValueError:
        return False
    return True


@contextmanager
def checkout(ref: str | None) -> Iterator[Path]:
    """Directory to run the sync from: the repo itself, or a temporary export of ref."""
    if ref is None:
        _compile(ROOT)
        yield ROOT
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-etl-"))
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", ref, *EXPORTED],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        _compile(tmp)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _compile(root: Path) -> None:
    """Byte-compile the sync's packages under ``root`` (``__pycache__``, as installed)."""
    packages = [str(root / name) for name in ("etl", "jobs") if (root / name).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
