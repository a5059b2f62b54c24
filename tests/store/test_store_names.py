"""Task names cannot leave RECAP_HOME: one rule where a name enters, and a safe name made from a task text.

A LeRobot dataset whose task text was "../" x 14 + "tmp/x/pwn" used to be stored under that name, and
`recap iterate` on it then wrote a checkpoint to /tmp/x/pwn/iteration-000; `recap partitions add` took the
same name, and "reach|v3,x" registered a partition that could never run.
"""

from __future__ import annotations

import json

import pytest
from store_helpers import write_lerobot_dataset
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.checkpoints.layout import CheckpointLayout
from recap_core.loop.fleet import dropped_datasets
from recap_core.names import task_name_from_text
from recap_core.store import EpisodeStore


def _escape(tmp_path) -> tuple[str, object]:
    """A task text that, used as a path segment under RECAP_HOME's checkpoints, lands in tmp/outside."""
    outside = tmp_path / "outside" / "pwn"
    return "../" * 30 + str(outside).lstrip("/"), outside


def test_a_task_text_is_stored_under_a_safe_name_and_names_are_checked_where_they_enter(
    tmp_path, monkeypatch
):
    home = tmp_path / "home"
    monkeypatch.setenv("RECAP_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    text, outside = _escape(tmp_path)
    write_lerobot_dataset(tmp_path / "ds", [6, 7], tasks=(text,))
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", "lerobot", str(tmp_path / "ds"), "--kind", "autonomous",
                                   "--success-column", "next.success"])  # fmt: skip
    assert ingested.exit_code == 0, ingested.output
    episodes = EpisodeStore().episodes().frame
    (name,) = set(episodes["task"].to_list())
    assert name == task_name_from_text(text) and "/" not in name and ".." not in name
    assert episodes["prompt"].to_list() == [text, text], "the task text stays queryable"

    for command in (
        ["iterate", "--task", text, "--iteration", "0", "--preset", "tiny"],
        ["partitions", "add", "--task", text, "--iteration", "0", "--preset", "tiny"],
        ["partitions", "add", "--task", "reach|v3,x", "--iteration", "0", "--preset", "tiny"],
        ["ingest", "lerobot", str(tmp_path / "ds"), "--kind", "demo", "--task", "../../x"],
    ):
        refused = runner.invoke(app, command)
        assert refused.exit_code != 0, command
        assert "name" in (refused.output + str(refused.exception)), command
    with pytest.raises(ValueError, match=r"task name '\.\./"):
        CheckpointLayout(home / "checkpoints").iteration("policy", text, 0)
    assert not outside.exists() and not (tmp_path / "outside").exists()
    assert not list(tmp_path.glob("**/pwn"))


def test_a_fleet_dataset_naming_a_task_outside_the_rule_is_refused(tmp_path):
    drop = tmp_path / "drop"
    write_lerobot_dataset(drop / "station-1", [5])
    (drop / "station-1" / "recap_import.json").write_text(json.dumps({"task": "../../etc", "kind": "demo"}))
    from recap_core.store.lerobot import LeRobotFormatError

    with pytest.raises(LeRobotFormatError, match=r"station-1: recap_import\.json: task name '\.\./\.\./etc'"):
        dropped_datasets(drop)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("push-v3", "push-v3"),  # already a name: kept
        (
            "Pick up the red cube.",
            f"pick-up-the-red-cube-{__import__('hashlib').sha256(b'Pick up the red cube.').hexdigest()[:8]}",
        ),
        ("", None),
        ("///", None),
    ],
)
def test_a_name_made_from_a_text_is_stable_safe_and_distinct(text, name):
    made = task_name_from_text(text)
    assert made == task_name_from_text(text)
    if name is not None:
        assert made == name
    from schemas.names import is_valid_name

    assert is_valid_name(made)
    assert made != task_name_from_text(text + " ")
