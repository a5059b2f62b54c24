"""One recording imported at once from several folders is stored once.

Copies of one LeRobot dataset in different folders give their episodes different ids (the id names the
source), so only the content hash says they are the same. Checked and inserted separately, concurrent
importers each found the content absent and stored it: 2 processes stored 400, 390 and 510 episodes of a
300-episode dataset, 4 processes 520. The store now claims each content hash in the same conflict-checked
commit that keeps keys unique (the episode_contents table), so each recording lands once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from paths import TESTS
from store_helpers import write_lerobot_dataset

from recap_core.store import EpisodeStore

EPISODES = 24

# Imports one copy of the dataset in batches of 3 episodes and prints the ids it reports added.
IMPORTER = r"""
import json, sys
from itertools import islice
from recap_core.store import EpisodeStore
from recap_core.store.lerobot import LeRobotOptions, iter_episodes, open_dataset

store = EpisodeStore(sys.argv[1])
episodes = iter_episodes(open_dataset(sys.argv[2]), LeRobotOptions(kind="demo", assume_success=True))
added, same = [], []
while batch := list(islice(episodes, 3)):
    result = store.add_episodes(batch)
    added += result.added
    same += result.same_content
print(json.dumps({"added": added, "same_content": same}))
"""


def race(tmp_path, writers: int) -> tuple[EpisodeStore, list[dict]]:
    """``writers`` processes importing their own copy of one dataset into one store at once."""
    write_lerobot_dataset(tmp_path / "copy-0", [6 + i % 5 for i in range(EPISODES)])
    for k in range(1, writers):
        shutil.copytree(tmp_path / "copy-0", tmp_path / f"copy-{k}")
    uri = str(tmp_path / "lance")
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": env}
    copies = [str(tmp_path / f"copy-{k}") for k in range(writers)]
    processes = [subprocess.Popen([sys.executable, "-c", IMPORTER, uri, copy], **pipe) for copy in copies]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    return EpisodeStore(uri), [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


def assert_stored_once(store: EpisodeStore, reports: list[dict]) -> None:
    stored = store.episodes().frame
    assert stored.height == EPISODES, f"{stored.height} episodes stored of a {EPISODES}-episode recording"
    assert stored["content_hash"].n_unique() == EPISODES
    steps = store.load_steps()
    assert len(steps) == int(stored["length"].sum()), "no step without its episode, none twice"
    added = [episode for report in reports for episode in report["added"]]
    assert sorted(added) == sorted(stored["episode_id"].to_list()), "each stored once, by one writer"


@pytest.mark.parametrize("writers", [2, 4])
def test_concurrent_imports_of_one_recording_from_several_folders_store_it_once(tmp_path, writers):
    store, reports = race(tmp_path, writers)
    assert_stored_once(store, reports)


def test_a_recording_claimed_by_a_writer_that_died_is_stored_by_the_next(tmp_path):
    """A crash between the claim and the episode rows leaves a claim nobody stored: the next import of
    the same recording stores it under the claimed id instead of skipping it forever."""
    import pyarrow
    from store_helpers import make_episode

    from schemas.episodes import CONTENTS, CONTENTS_ARROW_SCHEMA, CONTENTS_KEY

    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes([make_episode(0)])
    orphan, again = make_episode(1), make_episode(1)
    again.episode_id = "another-id-of-the-same-recording"  # the same recording, imported from elsewhere
    from recap_core.store.batch import content_hash

    claim = pyarrow.table({"content_hash": [content_hash(orphan)], "episode_id": [orphan.episode_id]},
                          schema=CONTENTS_ARROW_SCHEMA)  # fmt: skip
    store._upsert(CONTENTS, claim, CONTENTS_KEY, update_matched=False)  # the writer died here
    result = store.add_episodes([again])
    assert result.added == [orphan.episode_id]
    assert sorted(store.episodes().frame["episode_id"].to_list()) == sorted(
        [make_episode(0).episode_id, orphan.episode_id]
    )
