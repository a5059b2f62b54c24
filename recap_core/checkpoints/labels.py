"""How a checkpoint is named in the data it produced: the ``collected_by`` of rollouts."""

from __future__ import annotations

import re
from pathlib import Path

from recap_core.checkpoints.verification import checkpoint_sha256

VERSION_FOLDER = re.compile(r"\.[^.]+\.[0-9a-f]{12}")  # atomic_directory's hidden versions


def policy_label(path: Path) -> str:
    """``collected_by`` of a rollout: which checkpoint (and exact weights) drove the robot.

    The one label every collector writes (the pipeline and `recap collect rollouts`), so the same
    rollouts get the same episode ids whichever way they were collected. A checkpoint reached through
    its version folder (``.iteration-001.<uuid>``, where the ``iteration-001`` link points) is named by
    the link.
    """
    name = path.name
    if name.startswith(".") and VERSION_FOLDER.fullmatch(name):
        name = name[1:].split(".")[0]
    return f"policy:{path.parent.name}/{name}@{checkpoint_sha256(path)[:12]}"
