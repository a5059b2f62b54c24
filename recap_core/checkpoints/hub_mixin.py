"""Checkpoints the Hugging Face way: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` and a
model card that carries the lineage.

huggingface_hub's ModelHubMixin provides the three entry points; this mixin plugs our checkpoint format
into them. The directory layout already is the Hub's (model.safetensors + config.json), so saving a
loaded checkpoint copies its files byte for byte and its sha256, which the lineage of every label and
evaluation refers to, stays the same on the Hub. Loading goes through the same verification as a local
load (recorded weights sha256, strict tensors, finite values), and works offline (HF_HUB_OFFLINE=1)
from the local cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar, Self

from huggingface_hub import ModelCard, ModelCardData, ModelHubMixin
from huggingface_hub.errors import LocalEntryNotFoundError

from recap_core.checkpoints.format import (
    CONFIG_FILE,
    LINEAGE_FILE,
    WEIGHTS_FILE,
    CheckpointRef,
    read_checkpoint_config,
)
from recap_core.checkpoints.hub_pull import pull_checkpoint
from recap_core.hub_offline import hub_offline

LIBRARY_NAME = "recap-pipeline"


class RecapHubMixin(
    ModelHubMixin,
    library_name=LIBRARY_NAME,
    license="apache-2.0",
    tags=["robotics", "recap", "reinforcement-learning"],
    paper_url="https://arxiv.org/abs/2511.14759",
):
    """Hub conventions for a trained value function or policy (subclasses say how to load and write)."""

    checkpoint: CheckpointRef | None
    KIND: ClassVar[str]

    @classmethod
    def _load_checkpoint(cls, folder: Path) -> Self:
        raise NotImplementedError

    def _write_checkpoint(self, directory: Path) -> CheckpointRef:
        raise NotImplementedError

    def _save_pretrained(self, save_directory: Path) -> None:
        """A saved checkpoint is copied unchanged (same sha256, same lineage); an unsaved one is written."""
        if self.checkpoint is None:
            self.checkpoint = self._write_checkpoint(Path(save_directory))
            return
        source = Path(self.checkpoint.path)
        if source.resolve() == Path(save_directory).resolve():
            return
        for name in (WEIGHTS_FILE, CONFIG_FILE, LINEAGE_FILE):
            if (source / name).is_file():
                shutil.copyfile(source / name, Path(save_directory) / name)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any) -> Self:
        """huggingface_hub's loader, with a missing offline copy named like a local load names it, and
        HF_HUB_OFFLINE read when it is called (``hub_offline``: the mixin would ask the network for
        config.json first, and with no network wait ~20 s for its retries)."""
        if kwargs.get("local_files_only") is None:
            kwargs["local_files_only"] = hub_offline()
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except LocalEntryNotFoundError as error:
            revision = kwargs.get("revision") or "main"
            raise FileNotFoundError(
                f"checkpoint {str(pretrained_model_name_or_path)!r} (revision {revision}) is not available "
                f"offline in cache_dir={kwargs.get('cache_dir')}"
            ) from error

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        **_config_fields: Any,
    ) -> Self:
        """A local checkpoint directory, or a Hub repository (downloaded, or from the cache offline)."""
        folder = Path(model_id)
        if not folder.is_dir():
            folder = pull_checkpoint(
                model_id,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=local_files_only or None,
                token=token if isinstance(token, str) else None,
            )
        return cls._load_checkpoint(folder)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The card states what a reader needs to trust the weights: kind, method, sha256, parent, data."""
        if self.checkpoint is None:
            raise ValueError("save the checkpoint before generating its model card")
        return model_card(Path(self.checkpoint.path), self.checkpoint.sha256, type(self).__name__)


def model_card(folder: Path, sha256: str, class_name: str) -> ModelCard:
    config = read_checkpoint_config(folder)
    lineage = json.loads((folder / LINEAGE_FILE).read_text()) if (folder / LINEAGE_FILE).is_file() else {}
    data = ModelCardData(
        library_name=LIBRARY_NAME,
        license="apache-2.0",
        tags=["robotics", "recap", f"recap-{config['kind']}", f"method-{config['method']}"],
    )
    parent = config.get("parent") or {}
    training = (config.get("training") or {}).get("config") or {}
    history = (config.get("training") or {}).get("history") or {}
    rows = [
        ("kind", config["kind"]),
        ("method", config["method"]),
        ("checkpoint sha256", sha256),
        ("weights sha256", config.get("weights_sha256", "not recorded")),
        ("parent checkpoint sha256", parent.get("sha256", "none (trained from scratch)")),
        ("created at", config.get("created_at")),
        ("epochs run", history.get("epochs_run")),
        ("gradient steps", history.get("gradient_steps")),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows if value is not None)
    body = f"""
# RECAP {config["kind"]} ({config["method"]})

A {"distributional value function" if config["kind"] == "value" else "flow-matching action-chunk policy"}
trained by the recap-pipeline implementation of RECAP (RL with Experience and Corrections via
Advantage-conditioned Policies, [arXiv 2511.14759](https://arxiv.org/abs/2511.14759)).

| field | value |
|---|---|
{table}

## Load

```python
from recap_core.checkpoints import {class_name}

model = {class_name}.from_pretrained("<this repository>")  # verifies the weights' sha256 on load
```

## Architecture

```json
{json.dumps(config["architecture"], indent=2, sort_keys=True)}
```

## Training configuration

```json
{json.dumps(training, indent=2, sort_keys=True)}
```

## Data lineage

```json
{json.dumps(lineage, indent=2, sort_keys=True, default=str) if lineage else "not recorded"}
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
