"""``external_policy`` settings: the commands that train and serve a policy in another environment.

Both commands are argument lists (no shell: a dataset path with a space stays one argument) whose items
may name placeholders in braces, filled in per run. A placeholder that does not exist is refused when the
settings are read, not when the nightly run reaches the policy stage.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

TRAIN_PLACEHOLDERS = {
    "dataset": "the labelled LeRobot v3.0 dataset of (task, iteration) (the labelled_dataset asset)",
    "pretrained": "external_policy.pretrained: the base model the trainer starts from (path or Hub id)",
    "output": "the empty directory the trained policy must be written to",
    "task": "the task",
    "iteration": "the iteration k",
    "seed": "pi^k's training seed",
    "settings": "a JSON file of the run's resolved settings",
}
SERVE_PLACEHOLDERS = {
    "checkpoint": "the directory the trainer wrote (a stored, verified version)",
    "host": "the address to bind (127.0.0.1)",
    "port": "the port to listen on (a free one, chosen per evaluation or collection)",
    "task": "the task",
}


@dataclass(frozen=True)
class ExternalKubernetesConfig:
    """Run the trainer as a Kubernetes pod (dagster-k8s's Pipes client) instead of a subprocess: the
    trainer's ``image``, in ``namespace`` (empty: the current one), with the persistent volume claim
    ``volume_claim`` that holds the study's checkpoint root mounted at ``mount_path``, the same path the
    pipeline sees it at, so ``{dataset}`` and ``{output}`` name the same folders in the pod. ``gpus``,
    ``cpu`` and ``memory``: the pod's requests (GPUs also its limit and a toleration for GPU nodes)."""

    image: str = ""
    namespace: str = ""
    volume_claim: str = ""
    mount_path: str = ""
    gpus: int = 1
    cpu: str = "8"
    memory: str = "32Gi"

    def __post_init__(self) -> None:
        if self.image and not (self.volume_claim and self.mount_path):
            raise ValueError(
                "external_policy.kubernetes.image is set: volume_claim and mount_path must name the volume "
                "holding the checkpoint root, or the pod cannot read the dataset nor write the policy"
            )
        if self.gpus < 0:
            raise ValueError(f"external_policy.kubernetes.gpus must be >= 0, got {self.gpus}")

    @property
    def enabled(self) -> bool:
        return bool(self.image)


@dataclass(frozen=True)
class ExternalPolicyConfig:
    """An external trainer and server for pi^k. ``train`` empty (the default): pi^k is this project's
    flow policy. ``env``: variables added to the commands' environment; ``cwd``: their working
    directory (empty: the current one); ``video``: the labelled dataset's cameras as mp4 rather than PNG
    images; ``horizon``: how many actions of each served chunk to execute (0: the server's metadata
    says, which openpi's servers do not: set it); ``startup_timeout_s``: how long the server may take
    to answer its health check; ``kubernetes``: train in a pod rather than a local subprocess."""

    name: str = "external"
    train: tuple[str, ...] = ()
    serve: tuple[str, ...] = ()
    pretrained: str = ""
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    video: bool = False
    horizon: int = 0
    startup_timeout_s: float = 120.0
    kubernetes: ExternalKubernetesConfig = field(default_factory=ExternalKubernetesConfig)

    def __post_init__(self) -> None:
        if not self.enabled:
            if self.serve:
                raise ValueError("external_policy.serve is set but external_policy.train is empty")
            return
        if not self.serve:
            raise ValueError(
                "external_policy.serve is empty: evaluation and collection drive the trained policy "
                "through an openpi-protocol server, so the settings must say how to start one"
            )
        require_placeholders(self.train, TRAIN_PLACEHOLDERS, "external_policy.train")
        require_placeholders(self.serve, SERVE_PLACEHOLDERS, "external_policy.serve")
        if "{output}" not in "".join(self.train):
            raise ValueError("external_policy.train never names {output}: where would the policy be written?")
        if "{port}" not in "".join(self.serve):
            raise ValueError("external_policy.serve never names {port}: the server must listen where asked")
        if self.horizon < 0:
            raise ValueError(f"external_policy.horizon must be >= 0, got {self.horizon}")
        if self.startup_timeout_s <= 0:
            raise ValueError(f"external_policy.startup_timeout_s must be > 0, got {self.startup_timeout_s}")

    @property
    def enabled(self) -> bool:
        return bool(self.train)


def placeholders(arguments: Sequence[str]) -> list[str]:
    """The placeholder names the arguments use, in order."""
    names = []
    for argument in arguments:
        for _, name, _, _ in string.Formatter().parse(argument):
            if name is not None:
                names.append(name)
    return names


def require_placeholders(arguments: Sequence[str], known: Mapping[str, str], where: str) -> None:
    for name in placeholders(arguments):
        if name not in known:
            choices = ", ".join("{" + key + "}" for key in known)
            shown = "{" + name + "}" if name else "an empty {}"
            raise ValueError(f"{where}: unknown placeholder {shown}; the placeholders are {choices}")


def render(arguments: Sequence[str], values: Mapping[str, object]) -> list[str]:
    """The command with its placeholders filled in (``require_placeholders`` ran on the settings)."""
    return [argument.format_map({key: str(value) for key, value in values.items()}) for argument in arguments]
