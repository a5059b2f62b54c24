"""HF_HUB_OFFLINE as it is now, for every Hugging Face Hub read (checkpoints, LeRobot datasets)."""

from __future__ import annotations

import os

from huggingface_hub import constants


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE asks for the local cache only. huggingface_hub reads the variable once,
    when it is imported, so a process that sets it later (a run worker, a test, a robot's launcher)
    would otherwise go to the network, and with no network wait for its timeouts and retries
    (~20 s here) before it says the repo is not cached."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return value in {"1", "ON", "YES", "TRUE"} or bool(constants.HF_HUB_OFFLINE)
