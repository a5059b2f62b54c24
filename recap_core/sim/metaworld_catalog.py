"""Every Meta-World v3 task with a scripted expert (the MT50 set), by name, with a derived step limit.

The limit comes from one rule applied once to the expert, not from a hand-written list: the longest of
the expert's successful runs over five seeds, times 2 (the slowest simulated operator moves at half
speed) times 1.5 (room for mistakes and recoveries), rounded up to 50 steps, within [100, 500] (500 is
Meta-World's own limit; 500 also when the expert never succeeds). The result is kept in
``metaworld_limits.json`` so importing the registry never runs a simulator; regenerate it with
``python -m recap_core.sim.metaworld_catalog``. The prompt is the task's name in words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("metaworld_limits.json")
DERIVATION_SEEDS = range(5)
SLOWEST_OPERATOR = 2.0
RECOVERY_MARGIN = 1.5
MIN_LIMIT, MAX_LIMIT = 100, 500


def metaworld_task_names() -> list[str]:
    """v3 tasks that have both a goal-observable environment and a scripted expert."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    from metaworld.policies import ENV_POLICY_MAP

    names = (key.removesuffix("-goal-observable") for key in ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE)
    return sorted(name for name in names if name in ENV_POLICY_MAP)


def prompt_from_name(name: str) -> str:
    """``button-press-topdown-v3`` -> ``button press topdown``."""
    return name.removesuffix("-v3").replace("-", " ")


def expert_success_lengths(name: str, seeds: Iterable[int] = DERIVATION_SEEDS) -> list[int]:
    """Steps the scripted expert needs to succeed from each seed (seeds it fails on are left out)."""
    from recap_core.sim.metaworld_env import MetaWorldEnv

    env = MetaWorldEnv(name)
    lengths = []
    for seed in seeds:
        env.reset(seed)
        for t in range(MAX_LIMIT):
            _, success = env.step(env.expert_action())
            if success:
                lengths.append(t + 1)
                break
    return lengths


def step_limit(expert_lengths: list[int]) -> int:
    if not expert_lengths:
        return MAX_LIMIT
    raw = max(expert_lengths) * SLOWEST_OPERATOR * RECOVERY_MARGIN
    return int(min(MAX_LIMIT, max(MIN_LIMIT, math.ceil(raw / 50) * 50)))


def derive_entry(name: str) -> dict:
    lengths = expert_success_lengths(name)
    return {"prompt": prompt_from_name(name), "max_steps": step_limit(lengths), "expert_steps": lengths}


def load_catalog() -> dict[str, dict]:
    return json.loads(CATALOG_FILE.read_text())


def main() -> None:
    catalog = {name: derive_entry(name) for name in metaworld_task_names()}
    CATALOG_FILE.write_text(json.dumps(catalog, indent=1, sort_keys=True) + "\n")
    print(f"{len(catalog)} tasks -> {CATALOG_FILE}")


if __name__ == "__main__":
    main()
