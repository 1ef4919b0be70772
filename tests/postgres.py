"""A real PostgreSQL for the store's tests: Debian's server, started once per test session (per
xdist worker) in a temp folder, on 127.0.0.1 and a free port, stopped by pg_ctl (or its PID) at
the end. `store_url` gives each test a fresh store, once on SQLite and once on PostgreSQL.

A test module uses them as a plugin:

    pytest_plugins = ["tests.postgres"]

There is no skip: a machine without PostgreSQL's server fails these tests and says what to
install (`make tools` does it on Debian).
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL = "install PostgreSQL's server (Debian: `apt-get install -y postgresql`, which `make tools` runs as root)"


def server_binaries() -> Path:
    """The folder of initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    pytest.fail(f"PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): {INSTALL}",
                pytrace=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Postgres:
    """A running server: its folder, port and binaries."""

    folder: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        """One statement outside a transaction (CREATE / DROP DATABASE)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True) as connection:
            connection.execute(statement)

    def pid(self) -> int | None:
        """The postmaster's PID, from its postmaster.pid (None once it stopped)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None


def _as_postgres(command: list[str], folder: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a server command as the `postgres` user when we are root (the server refuses root), else as ourselves."""
    if os.geteuid() == 0:
        command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)


def _start(binaries: Path) -> Postgres:
    folder = Path(tempfile.mkdtemp(prefix="driftgate-pg-"))  # not under pytest's 0700 temp root: the postgres user must enter it
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    made = _as_postgres([str(binaries / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                         "--no-sync"], folder)
    if made.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL's initdb failed ({binaries / 'initdb'}, exit {made.returncode}):\n{made.stderr.strip()}", pytrace=False)
    problems = []
    for _ in range(3):  # a free port can be taken by someone else before the server binds it: try another
        port = free_port()
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        started = _as_postgres([str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-w", "-t", "60", "-l", str(folder / "log"),
                                "-o", options, "start"], folder)
        if started.returncode == 0:
            return Postgres(folder, port, binaries)
        log = (folder / "log").read_text(errors="replace")[-2000:] if (folder / "log").exists() else ""
        problems.append(f"port {port}: {started.stderr.strip() or started.stdout.strip()}\n{log}")
    shutil.rmtree(folder, ignore_errors=True)
    pytest.fail("PostgreSQL did not start on 127.0.0.1:\n" + "\n".join(problems), pytrace=False)


def _stop(server: Postgres) -> None:
    pid = server.pid()
    stopped = _as_postgres([str(server.bin / "pg_ctl"), "-D", str(server.data), "-m", "fast", "-w", "-t", "30", "stop"], server.folder)
    if stopped.returncode != 0 and pid is not None:  # pg_ctl could not stop it: its own PID, then
        try:
            os.kill(pid, signal.SIGQUIT)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Debian's PostgreSQL, running for the session on 127.0.0.1 (fails, never skips, when it cannot start)."""
    server = _start(server_binaries())
    try:
        yield server
    finally:
        _stop(server)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.sqlite")
        return
    server: Postgres = request.getfixturevalue("postgres")
    name = f"t_{uuid.uuid4().hex[:12]}"
    server.sql(f"CREATE DATABASE {name}")
    try:
        yield server.url(name)
    finally:
        server.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
