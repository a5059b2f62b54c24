"""`recap ui`: the Dagster webserver and daemon on the project's instance and code location "recap".

This is what `dagster dev` does, without its two warnings: `dagster dev` is superseded (Dagster points
to `dg dev`), and run from the repository it finds the project's dagster.yaml in the working folder and
warns that DAGSTER_HOME's copy is the one in use. Both processes run from DAGSTER_HOME instead, with
RECAP_HOME made absolute so the code location still finds the data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipelines.instance import initialise_storage
from recap_core.locations import data_root

WORKSPACE = Path(__file__).resolve().parent.parent / "workspace.yaml"


def ui_commands(port: int, host: str = "127.0.0.1") -> list[list[str]]:
    """The webserver (serves the UI) and the daemon (schedules, sensors, the run queue, run monitoring)."""
    workspace = ["-w", str(WORKSPACE)]
    return [
        [sys.executable, "-m", "dagster_webserver", *workspace, "-h", host, "-p", str(port)],
        [sys.executable, "-m", "dagster._daemon", "run", *workspace],
    ]


def serve_ui(dagster_home: Path, port: int) -> int:
    """Run both until either exits or the user interrupts; stop the other; return the first exit code."""
    initialise_storage(dagster_home)  # before the processes that would otherwise race to create it
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "RECAP_HOME": str(data_root())}
    # The children run in their own sessions (so a Ctrl-C reaches them once, through us): a SIGTERM or
    # SIGHUP to this process must stop them too, not leave them running without a parent.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    processes = [
        subprocess.Popen(command, cwd=dagster_home, env=env, start_new_session=True)
        for command in ui_commands(port)
    ]
    code = 0
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        code = next(process.returncode for process in processes if process.returncode is not None)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
