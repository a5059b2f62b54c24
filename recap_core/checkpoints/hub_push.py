"""Push a checkpoint directory to a Hugging Face Hub repository: weights, config.json, lineage and a
model card, after the same verification a load does (recorded weights sha256, strict tensors, finite
values), so a corrupted checkpoint never reaches the Hub."""

from __future__ import annotations

import tempfile
from pathlib import Path

from huggingface_hub import HfApi

from recap_core.checkpoints.format import TRANSFER_FILES, read_checkpoint_config
from recap_core.checkpoints.policy import TrainedPolicy
from recap_core.checkpoints.value import ValueFunction


def push_checkpoint(
    path: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = True,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a checkpoint directory, with its lineage and a model card, to ``repo_id`` (created if
    missing); returns the commit id. The upload is exactly what ``save_pretrained`` writes."""
    config = read_checkpoint_config(path)
    loaded = (ValueFunction if config["kind"] == "value" else TrainedPolicy).from_pretrained(str(path))
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        loaded.save_pretrained(folder)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            revision=revision,
            allow_patterns=TRANSFER_FILES,
            commit_message=commit_message
            or f"{config['kind']} checkpoint ({config['method']}) sha256 {loaded.checkpoint.sha256[:12]}",
        )
    return str(info.oid)
