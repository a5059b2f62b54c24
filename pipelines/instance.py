"""A persistent local Dagster instance configured by the project's dagster.yaml.

Dagster reads its instance configuration from $DAGSTER_HOME/dagster.yaml. The project keeps one
dagster.yaml under version control and installs it into DAGSTER_HOME, so the UI, the CLI and the
nightly schedule all share the same run history, run queue and training pool.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from recap_core.locations import data_root

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def ensure_dagster_home() -> Path:
    """Set DAGSTER_HOME (default data/dagster_home) and install the project's dagster.yaml there."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_root() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if PROJECT_DAGSTER_YAML.exists() and (
        not target.exists() or target.read_bytes() != PROJECT_DAGSTER_YAML.read_bytes()
    ):
        shutil.copyfile(PROJECT_DAGSTER_YAML, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def initialise_storage(home: Path) -> None:
    """Create (or migrate) the instance's storage once, in this process, before anything else opens it.

    On a fresh SQLite home the webserver, the daemon and the code server would otherwise each create the
    run, event-log and schedule databases at the same moment, and two of them stamping the alembic
    version table leave it with two heads ("alembic_version has more than one head present"): the code
    location then fails to load. Opening the instance here creates all three databases (Postgres
    storage is created the same way), so the processes started next find them ready.
    """
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)  # touches the run storage; the constructor created the other two
