"""A persistent local Dagster instance configured by the project's dagster.yaml.

Dagster reads its instance configuration from $DAGSTER_HOME/dagster.yaml. The project keeps one
dagster.yaml under version control and installs it into DAGSTER_HOME, so the UI, the CLI and the
nightly schedule all share the same run history, run queue and training pool.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path

from recap_core.locations import data_root

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def ensure_dagster_home() -> Path:
    """Set DAGSTER_HOME (default data/dagster_home), install the project's dagster.yaml there and make
    sure its storage exists (``initialise_storage``), so every command opens a ready instance."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_root() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if PROJECT_DAGSTER_YAML.exists() and (
        not target.exists() or target.read_bytes() != PROJECT_DAGSTER_YAML.read_bytes()
    ):
        shutil.copyfile(PROJECT_DAGSTER_YAML, target)
    os.environ["DAGSTER_HOME"] = str(home)
    initialise_storage(home)
    return home


def initialise_storage(home: Path) -> None:
    """Create (or migrate) the instance's storage once, before anything else opens it.

    On a fresh SQLite home the processes that open it at the same moment (the webserver, the daemon and
    the code server of `recap ui`; two CLI commands; a test and the command it started) would each create
    the run, event-log and schedule databases, and two of them stamping the alembic version table leave
    it with two heads ("alembic_version has more than one head present"): nothing can open the instance
    after that. So the first process to get here creates them, holding an exclusive lock on
    ``.storage.lock`` in the home, and leaves a marker naming the dagster.yaml it created them for; the
    others wait on the lock, find the marker and return (Postgres storage is created the same way).
    """
    import dagster as dg

    marker = home / ".storage-ready"
    config = home / "dagster.yaml"
    stamp = hashlib.sha256(config.read_bytes() if config.exists() else b"").hexdigest()
    if marker.exists() and marker.read_text() == stamp:
        return
    with (home / ".storage.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == stamp:
            return
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs(limit=1)  # touches the run storage; the constructor created the other two
        marker.write_text(stamp)
