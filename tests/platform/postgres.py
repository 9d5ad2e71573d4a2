"""A real PostgreSQL server for the tests: Debian's binaries, a throw-away cluster on loopback.

The server runs as the ``postgres`` system user when the tests run as root (as
CI does: PostgreSQL refuses to run as root), listening on a free port with
trust authentication on loopback only. When the binaries are missing the
tests that need it are skipped with the one command that installs them, so
the summary line shows them as not run.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

INSTALL = "apt-get install -y postgresql (or run `make test` as root: the set-up installs it)"


def _binaries():
    for pattern in ("/usr/lib/postgresql/*/bin",):
        for directory in sorted(glob.glob(pattern), reverse=True):
            if os.path.exists(os.path.join(directory, "initdb")):
                return directory
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self):
        bindir = _binaries()
        if bindir is None:
            pytest.skip(f"PostgreSQL not installed; {INSTALL}")
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="meshmpc-pg-")
        self.port = _free_port()
        self.prefix = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip(f"no postgres system user; {INSTALL}")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.root, "data")
        self._run([f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8"])
        self.proc = subprocess.Popen(
            [*self.prefix, f"{bindir}/postgres", "-D", data, "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", "fsync=off", "-c", "synchronous_commit=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait()

    def _run(self, cmd):
        subprocess.run([*self.prefix, *cmd], check=True, capture_output=True)

    def _wait(self):
        import psycopg

        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start")

    def dsn(self, db):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self):
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        shutil.rmtree(self.root, ignore_errors=True)
