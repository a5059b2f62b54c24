"""Push and pull checkpoint directories to and from a Hugging Face Hub repository.

The weights, config.json, the lineage and the model card travel, and a pulled checkpoint is checked
against the sha256 recorded by whoever asked for it, so a re-uploaded or corrupted file cannot silently
change lineage.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from recap_core.checkpoints.format import checkpoint_sha256, read_checkpoint_config
from recap_core.checkpoints.hub_mixin import TRANSFER_FILES


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
    from recap_core.checkpoints.policy import TrainedPolicy
    from recap_core.checkpoints.value import ValueFunction

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


def pull_checkpoint(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_dir: str | Path | None = None,
    expected_sha256: str | None = None,
    local_files_only: bool | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download (or resolve from the local cache / ``local_dir`` when offline) a checkpoint directory.

    ``local_files_only`` None follows huggingface_hub's HF_HUB_OFFLINE setting.
    """
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            local_dir=local_dir,
            allow_patterns=TRANSFER_FILES,
            local_files_only=bool(local_files_only),
            token=token,
            endpoint=endpoint,
        )
    except LocalEntryNotFoundError as error:
        raise FileNotFoundError(
            f"checkpoint {repo_id!r} (revision {revision or 'main'}) is not available offline in "
            f"cache_dir={cache_dir} / local_dir={local_dir}"
        ) from error
    folder = Path(folder)
    read_checkpoint_config(folder)
    if expected_sha256 is not None:
        actual = checkpoint_sha256(folder)
        if actual != expected_sha256:
            raise ValueError(
                f"checkpoint {repo_id!r} pulled to {folder} has sha256 {actual}, expected {expected_sha256}"
            )
    return folder
