"""Pull a checkpoint directory from a Hugging Face Hub repository (or the local cache when offline).

A pulled checkpoint is checked against the sha256 recorded by whoever asked for it, so a re-uploaded or
corrupted file cannot silently change lineage.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from recap_core.checkpoints.format import TRANSFER_FILES, read_checkpoint_config
from recap_core.checkpoints.verification import checkpoint_sha256
from recap_core.hub_offline import hub_offline


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

    ``local_files_only`` None follows HF_HUB_OFFLINE as it is when this is called (``hub_offline``).
    """
    if local_files_only is None:
        local_files_only = hub_offline()
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            local_dir=local_dir,
            allow_patterns=TRANSFER_FILES,
            local_files_only=local_files_only,
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
