"""Which task names a run may use: a simulated task, or one whose episodes are in the study's store.

Checked before anything is registered or run (a task partition, once added, stays in the asset graph),
and cheaply: the simulated names need no store, and the store is opened only for a name that is not one
of them (a fleet task).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from recap_core.names import require_task_name
from recap_core.sim.tasks import task_names, unknown_task_message


def require_known_tasks(tasks: Sequence[str], stored_tasks: Callable[[], set[str]]) -> None:
    """Refuse a name outside the names' rule, or one neither simulated nor in ``stored_tasks()``, naming
    it and the nearest known names."""
    for task in tasks:
        require_task_name(task)
    simulated = set(task_names())
    unknown = [t for t in tasks if t not in simulated]
    if not unknown:
        return
    stored = stored_tasks()
    unknown = [t for t in unknown if t not in stored]
    if unknown:
        raise ValueError(unknown_task_message(unknown[0], stored))


def tasks_in_store(store_uri: str) -> Callable[[], set[str]]:
    """The task names with episodes in the store at ``store_uri``, read when called."""

    def read() -> set[str]:
        from recap_core.store import EpisodeStore

        return set(EpisodeStore(store_uri).episodes().frame["task"].unique().to_list())

    return read
