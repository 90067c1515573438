"""A real, throw-away PostgreSQL server for the tests: initdb in a temporary folder, started
with pg_ctl on a free port on 127.0.0.1, stopped and deleted at the end of the session.

No mock: the PostgreSQL gallery's tests run against the same server binaries production
uses. Binaries are looked up in $FACEBOT_PG_BIN, then PATH (initdb, pg_ctl), then
/usr/lib/postgresql/<version>/bin (Debian, newest version first) and the usual Homebrew and
source-install folders; the `postgres_server` fixture skips the test, saying so, when there
are none. PostgreSQL refuses to run as root, so under root the server runs as the
`postgres` system user (Debian's package creates it); the folder is handed to that user.

The server trades durability for speed (fsync=off, full_page_writes=off): a crashing
*process* still cannot lose a committed row (the kernel has it), only a power cut could,
and these tests kill processes, not machines.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SUPERUSER = "facebot"


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    candidates = []
    if os.environ.get("FACEBOT_PG_BIN"):
        candidates.append(os.environ["FACEBOT_PG_BIN"])
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        candidates.append(str(Path(shutil.which("initdb")).parent))

    def major(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += sorted((str(Path(p).parent) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
                         key=lambda d: major(d), reverse=True)
    candidates += ["/opt/homebrew/bin", "/usr/local/bin", "/usr/local/pgsql/bin"]
    candidates += sorted(glob.glob("/opt/homebrew/opt/postgresql*/bin"), reverse=True)
    for folder in candidates:
        if all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; `url(db)` names a database on it.

    `start()` runs initdb and pg_ctl start (a few seconds); `stop()` stops it and deletes
    the folder. `create_database()` makes a fresh empty database (about 0.1 s).
    `durable=True` keeps PostgreSQL's default fsync settings (for benchmarks).
    """

    def __init__(self, bindir: Path, durable: bool = False):
        self.bindir = bindir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="facebot-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._counter = 0
        self._user = None
        if os.geteuid() == 0:
            # initdb refuses root; the unprivileged `postgres` user runs the server instead.
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as") from None
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)

    def _cmd(self, *args: str) -> list[str]:
        """A command line, run as the `postgres` user when we are root."""
        command = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *command] if self._user else command

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                               f"\n{self.log_tail()}")

    def start(self) -> PostgresServer:
        """initdb, then start on a free port (retrying if another process took the port)."""
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")
        for attempt in range(3):
            self.port = free_port()
            try:
                self.resume()
                return self
            except RuntimeError:
                if attempt == 2:
                    raise
                time.sleep(0.5)
        return self

    def resume(self) -> None:
        """Start the server (again, after `halt`) on its port."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c max_connections=200")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
                  "-w", "-t", "60", "start")

    def halt(self) -> None:
        """Stop the server as an administrator would (fast shutdown: every connection
        closed), keeping its data for `resume`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.halt()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """postgresql://facebot@127.0.0.1:PORT/DATABASE; the server trusts any password, so
        tests may put one in the URL to check that it is never shown."""
        secret = f":{password}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        import psycopg

        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.root / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the whole test session; skips when no binaries are found."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) found; install Debian's `postgresql` "
                    "or set FACEBOT_PG_BIN")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    try:
        server = PostgresServer(bindir)
    except RuntimeError as exc:
        pytest.skip(f"cannot run PostgreSQL here: {exc}")
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()
