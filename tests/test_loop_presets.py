"""The named presets keep their values: each is compared with a snapshot of every preset's settings taken
before the presets moved into data files (tests/snapshots/presets.json, in the layout of that time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recap_core.loop.settings import PRESETS, preset

SNAPSHOT = Path(__file__).parent / "snapshots" / "presets.json"

# The snapshot's training configs named the architecture field by field; it is now one nested config,
# whose sizes are filled in when the network is built and whose value support moved out of the reward.
VALUE_NETWORK = (
    "n_bins",
    "backbone",
    "hidden",
    "depth",
    "heads",
    "prompt_dim",
    "prompt_buckets",
    "time_aware",
)
POLICY_NETWORK = (
    "horizon",
    "backbone",
    "hidden",
    "depth",
    "heads",
    "prompt_dim",
    "prompt_buckets",
    "flow_steps",
)


def _nested_value(old: dict) -> dict:
    new = {key: value for key, value in old.items() if key not in VALUE_NETWORK}
    reward = dict(old["reward"])
    support = {"value_min": reward.pop("value_min"), "value_max": reward.pop("value_max")}
    architecture = {"obs_dim": 0, **{key: old[key] for key in VALUE_NETWORK}, **support}
    return {**new, "reward": reward, "architecture": architecture}


def _nested_policy(old: dict) -> dict:
    new = {key: value for key, value in old.items() if key not in POLICY_NETWORK}
    fixed = {"obs_dim": 0, "action_dim": 0, "time_dim": 32, "indicator_dim": 16, "conditioned": True}
    return {**new, "architecture": {**fixed, **{key: old[key] for key in POLICY_NETWORK}}}


def _expected(name: str) -> dict:
    old = json.loads(SNAPSHOT.read_text())[name]
    for key in ("value_pretrain", "value_finetune"):
        old[key] = _nested_value(old[key])
    for key in ("policy_pretrain", "policy_finetune"):
        old[key] = _nested_policy(old[key])
    return old


@pytest.mark.parametrize("name", sorted(json.loads(SNAPSHOT.read_text())))
def test_every_preset_keeps_its_values(name: str) -> None:
    assert preset(name).to_dict() == _expected(name)


def test_the_snapshot_covers_every_preset() -> None:
    assert sorted(PRESETS) == sorted(json.loads(SNAPSHOT.read_text()))
