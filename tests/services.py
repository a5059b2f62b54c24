"""Real services the deployment tests need, started on 127.0.0.1 from packages the test command installs.

PostgreSQL comes from the Debian package (``apt-get install postgresql``): a throwaway cluster in a
temporary folder, on a free port, run as the ``postgres`` user (the server refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return Path(found[-1]).parent


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[dict[str, str]]:
    """A running PostgreSQL with database ``dagster``; yields the DAGSTER_PG_* environment variables."""
    binaries = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="recap-postgres-"))
    os.chmod(root, 0o777)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()
    run = lambda *command: subprocess.run(  # noqa: E731
        _as_postgres([str(c) for c in command]), check=True, capture_output=True, text=True, timeout=120
    )
    try:
        run(binaries / "initdb", "-D", data, "-A", "trust", "-U", "recap", "--no-sync")
        options = f"-p {port} -h 127.0.0.1 -k {root} -F"
        run(binaries / "pg_ctl", "-D", data, "-o", options, "-l", root / "server.log", "-w", "start")
        run(binaries / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "recap", "dagster")
        yield {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_USER": "recap",
            "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
            "DAGSTER_PG_DB": "dagster",
        }
    finally:
        subprocess.run(
            _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3-compatible server (PyPI ``moto[server]``) on 127.0.0.1 with a bucket ``recap``; yields
    the AWS_* variables a client needs (any key works against moto). It serves one request at a time, so
    conditional puts are atomic as on S3 (see s3_test_server.py)."""
    import sys
    import time
    import urllib.request

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("s3_test_server.py")), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(f"{endpoint}/recap", method="PUT"), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the S3 test server (moto) did not start") from None
                time.sleep(0.3)
        yield {
            "AWS_ACCESS_KEY_ID": "recap-test",
            "AWS_SECRET_ACCESS_KEY": "recap-test-secret",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
