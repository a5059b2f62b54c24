"""Crash recovery for in-process runs: a run whose process died must not hold its pool slot forever.

`recap run`/`iterate`/`experiment` execute runs in their own process (``dagster.materialize``). If that
process is killed inside a training step, Dagster never hears that the run ended: the run stays STARTED
and keeps its slot in the `training` pool (limit 1), so every later run waits for it forever. Each
in-process run is therefore tagged with its host and process id, and every command first marks runs of
this host whose process is gone as failed and frees their slots. Runs launched by the daemon or the UI
are covered by Dagster's own run monitoring (dagster.yaml: ``run_monitoring``).
"""

from __future__ import annotations

import os
import socket

import dagster as dg

HOST_TAG = "recap/host"
PID_TAG = "recap/pid"
UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def owner_tags() -> dict[str, str]:
    """Tags naming the process that executes an in-process run."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def recover_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark this host's unfinished in-process runs whose process is gone as failed; free their slots.

    Also frees pool slots still held by runs that have already ended (e.g. killed between the end of a
    step and the release of its slot). Returns the ids of the runs it marked failed.
    """
    host = socket.gethostname()
    recovered = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        pid = run.tags.get(PID_TAG)
        if run.tags.get(HOST_TAG) != host or not pid or not pid.isdigit() or _process_alive(int(pid)):
            continue
        instance.report_run_failed(run, f"process {pid} that executed this run is gone (killed or crashed)")
        recovered.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return recovered
