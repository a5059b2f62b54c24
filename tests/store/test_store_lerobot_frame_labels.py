"""The LeRobot v3.0 writer's per-frame additions: extra feature columns and a prompt per frame (what a
labelled dataset needs), read back with pyarrow as a trainer would and by the importer; a dataset
without them is written exactly as before."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from recap_core.lerobot_v3 import layout
from recap_core.lerobot_v3.episode import RecordedEpisode
from recap_core.lerobot_v3.writer import write_dataset
from recap_core.store.lerobot import LeRobotFormatError, LeRobotOptions, iter_episodes, open_dataset

PROMPTS = ["open\nAdvantage: positive", "open\nAdvantage: negative", "open"]


def _episode(length: int, seed: int, labelled: bool = True, **changes) -> RecordedEpisode:
    rng = np.random.default_rng(seed)
    extra = {}
    if labelled:
        indicator = np.arange(length) % 3 == 0
        extra = {
            "frame_prompts": [PROMPTS[2] if t % 4 == 3 else PROMPTS[0 if i else 1] for t, i in
                              enumerate(indicator)],
            "columns": {"advantage": rng.normal(size=length).astype(np.float32), "indicator": indicator},
        }  # fmt: skip
    fields = {
        "state": rng.normal(size=(length, 3)),
        "action": rng.uniform(-1, 1, size=(length, 2)),
        "prompt": "open",
        "task": "open-drawer",
        "kind": "autonomous",
        "success": True,
        **extra,
        **changes,
    }
    return RecordedEpisode(**fields)


def _frames(root) -> dict[str, list]:
    return pq.read_table(root / "data" / "chunk-000" / "file-000.parquet").to_pydict()


def test_extra_columns_and_frame_prompts_reach_the_files_a_trainer_reads(tmp_path):
    episodes = [_episode(7, 0), _episode(5, 1)]
    out = tmp_path / "labelled"
    write_dataset(out, episodes, fps=10, prompts=[*PROMPTS, "never used"], info={"recap": {"seed": 3}})

    tasks = pq.read_table(out / "meta" / "tasks.parquet").to_pydict()
    assert tasks == {"task_index": [0, 1, 2, 3], "task": [*PROMPTS, "never used"]}, "given order, all listed"
    frames = _frames(out)
    prompt_of = dict(zip(tasks["task_index"], tasks["task"], strict=True))
    assert [prompt_of[i] for i in frames["task_index"]] == [p for e in episodes for p in e.frame_prompts]
    expected = np.concatenate([e.columns["advantage"] for e in episodes])
    assert np.array_equal(np.asarray(frames["advantage"], np.float32), expected)
    assert frames["indicator"] == [bool(v) for e in episodes for v in e.columns["indicator"]]
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["advantage"] == {"dtype": "float32", "shape": [1], "names": None}
    assert info["features"]["indicator"]["dtype"] == "bool"
    assert info["recap"] == {"seed": 3} and info["total_tasks"] == 4
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert stats["advantage"]["count"] == [12]
    assert stats["advantage"]["max"] == [pytest.approx(float(expected.max()))]
    meta = pq.read_table(out / layout.EPISODES_META_FILE).to_pydict()
    assert meta["tasks"][0] == list(dict.fromkeys(episodes[0].frame_prompts)), "the prompts its frames use"
    assert meta[layout.PROMPT_COLUMN] == ["open", "open"]
    sidecar = json.loads((out / layout.IMPORT_FILE).read_text())
    assert sidecar["prompt_column"] == layout.PROMPT_COLUMN

    imported = list(iter_episodes(open_dataset(str(out)), LeRobotOptions(**sidecar)))
    assert [e.prompt for e in imported] == ["open", "open"], "the episode's prompt, not a frame's"
    assert np.array_equal(imported[1].actions, episodes[1].action)
    with pytest.raises(
        LeRobotFormatError, match=r"episode 0: column 'task_index' = \[0, 1, 2\]: need exactly one"
    ):
        list(iter_episodes(open_dataset(str(out)), LeRobotOptions(**{**sidecar, "prompt_column": None})))


def test_a_dataset_without_them_is_written_as_before(tmp_path):
    out = tmp_path / "plain"
    write_dataset(out, [_episode(4, 0, labelled=False), _episode(3, 1, labelled=False)], fps=10)
    meta = pq.read_table(out / layout.EPISODES_META_FILE)
    assert (
        layout.PROMPT_COLUMN not in meta.schema.names and meta.column("tasks").to_pylist() == [["open"]] * 2
    )
    assert "prompt_column" not in json.loads((out / layout.IMPORT_FILE).read_text())
    assert set(_frames(out)) == set(layout.WRITER_FRAME_COLUMNS)
    assert pq.read_table(out / "meta" / "tasks.parquet").to_pydict() == {"task_index": [0], "task": ["open"]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"columns": {"action": np.zeros(4)}}, r"extra column 'action' would replace a column the writer"),
        ({"columns": {"value": np.zeros(3)}}, r"extra column 'value' is float64 of shape \(3,\): need one"),
        ({"columns": {"note": np.array(["a"] * 4)}}, r"extra column 'note' is <U1"),
        ({"frame_prompts": ["open"] * 3}, r"frame_prompts must be 4 non-empty prompts"),
        ({"frame_prompts": ["open", "", "open", "open"]}, r"frame_prompts must be 4 non-empty prompts"),
    ],
)
def test_bad_frame_additions_are_refused_naming_them(changes, message):
    with pytest.raises(ValueError, match=message):
        _episode(4, 0, labelled=False, **changes)


def test_episodes_with_other_extra_columns_or_a_writer_info_key_are_refused(tmp_path):
    other = _episode(4, 1, columns={"advantage": np.zeros(4, np.float64), "indicator": np.ones(4, bool)})
    with pytest.raises(
        ValueError, match=r"extra columns \[\('advantage', 'float64'\), \('indicator', 'bool'\)\]"
    ):
        write_dataset(tmp_path / "mixed", [_episode(4, 0), other], fps=10)
    with pytest.raises(ValueError, match=r"info keys \['fps'\] are meta/info.json keys the writer sets"):
        write_dataset(tmp_path / "info", [_episode(4, 0)], fps=10, info={"fps": 5})
    assert not list(tmp_path.iterdir()), "a refused dataset leaves nothing behind"
