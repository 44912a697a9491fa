"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temporary folder, on a free loopback port.

The server is the real one (Debian's postgresql package; `.ci/run` installs it where it is missing). It
refuses to run as root, so as root the cluster belongs to the ``postgres`` user (``runuser``). Password
authentication (scram-sha-256) is on for TCP connections, so a wrong password is refused as it would be
on a real server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER, PASSWORD = "effnet", "s3cret-pw"


def find_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: PATH, else Debian's versioned folder (not on PATH there)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One server: ``url(db)`` to connect, ``stop``/``start``/``restart`` to take it away and back."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="effnet-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self._as_postgres = hasattr(os, "geteuid") and os.geteuid() == 0
        if self._as_postgres:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        (self.root / "pw").write_text(PASSWORD)
        if self._as_postgres:
            os.chown(self.root / "pw", pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--pwfile", str(self.root / "pw"), "-A", "trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr or proc.stdout}\n{log}")

    def start(self) -> None:
        # fsync off: a test cluster need not survive a power cut, and it makes commits cheap on a busy disk.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, db: str = "postgres", password: str = PASSWORD, user: str = USER) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def create_db(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def env(self) -> dict[str, str]:
        """What a child process needs to restart this server (:func:`restart_from_env`)."""
        import json

        return {"EFFNET_TEST_PG": json.dumps(dict(bin_dir=str(self.bin_dir), root=str(self.root), port=self.port))}

    def close(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


def restart_from_env(down_s: float) -> None:
    """Stop the test server (closing every connection), wait ``down_s``, start it again: from any process."""
    import json
    import time

    spec = json.loads(os.environ["EFFNET_TEST_PG"])
    cluster = Cluster.__new__(Cluster)
    cluster.bin_dir, cluster.root, cluster.port = Path(spec["bin_dir"]), Path(spec["root"]), spec["port"]
    cluster.data, cluster.log = cluster.root / "data", cluster.root / "server.log"
    cluster._as_postgres = hasattr(os, "geteuid") and os.geteuid() == 0
    cluster.stop()
    time.sleep(down_s)
    cluster.start()
