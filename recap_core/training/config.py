"""Training configurations and the history every trainer returns (both JSON-serialisable for lineage).

Free of torch (the networks' configurations come from recap_core.models.config), so the loop's settings
and a pipeline's definitions read them without importing a trainer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from recap_core.models.config import FlowPolicyConfig, ValueNetConfig, require_same_layout
from recap_core.rules.rewards import RewardConfig

WEIGHT_RULES = ("best_heldout", "last")
READERS = ("memory", "streaming")
"""How a training stage reads its steps (recap_core.training.sources): loaded once, or streamed in shards."""


@dataclass(frozen=True)
class OptimisationConfig:
    """Optimisation, split and early-stopping settings shared by every trainer.

    ``steps_per_epoch`` None means one pass over the training steps. ``weights`` is the rule for the
    final weights: "best_heldout" stops early on the held-out loss (episodes split off with
    ``val_fraction``) and restores the best epoch's weights; "last" runs every epoch and keeps the final
    weights, so methods compared on the same data get exactly the same number of gradient steps (the
    held-out loss is still recorded, but objectives such as PPO's are not comparable across methods).
    ``progress``: a per-epoch progress bar on stderr, off unless asked for (pipelines report per stage).
    """

    epochs: int = 30
    batch_size: int = 256
    steps_per_epoch: int | None = None
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    val_fraction: float = 0.1
    patience: int = 5
    min_delta: float = 1e-4
    seed: int = 0
    weights: str = "best_heldout"
    progress: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.weights not in WEIGHT_RULES:
            raise ValueError(f"weights must be one of {WEIGHT_RULES}, got {self.weights!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict:
        out = asdict(self)
        if "architecture" in out:  # its own layout: a state-only network records no camera fields
            out["architecture"] = self.architecture.to_dict()  # type: ignore[attr-defined]
        if "reward" in out:
            out["reward"] = {**out["reward"], "task_max_length": dict(out["reward"]["task_max_length"])}
        return out


@dataclass(frozen=True)
class ValueTrainConfig(OptimisationConfig):
    """Value-function training: the network's architecture (``obs_dim`` filled in from the data; when
    finetuning it must be the checkpoint's) and the reward."""

    architecture: ValueNetConfig = field(default_factory=ValueNetConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)


@dataclass(frozen=True)
class PolicyTrainConfig(OptimisationConfig):
    """Policy training for every extraction method.

    RECAP: ``indicator_dropout`` (0.3) is the classifier-free-guidance dropout of the indicator token.
    AWR: weights exp(A / T), T = ``awr_temperature`` or, if None, the std of the advantages (so the
    baseline is not crippled by the small scale of normalised advantages), clipped at ``awr_max_weight``
    and normalised to mean 1. PPO (the paper's, Appendix D): the SPO objective with trust region
    ``ppo_trust_region`` (0.01) on the ratio exp(scale * (L_ref - L_theta)) of single-step flow-matching
    losses at shared (tau, noise), against a frozen reference: the policy that collected the data.
    Advantages are standardised. ``architecture``: the network (sizes filled in from the data and
    ``conditioned`` from the method; when finetuning it must be the checkpoint's).
    """

    architecture: FlowPolicyConfig = field(default_factory=FlowPolicyConfig)
    indicator_dropout: float = 0.3
    awr_temperature: float | None = None
    awr_max_weight: float = 20.0
    ppo_trust_region: float = 0.01
    ppo_likelihood_scale: float = 1.0


@dataclass
class TrainingHistory:
    """Per-epoch losses and a summary, stored in the checkpoint and used for lineage plots."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    seconds: float = 0.0
    samples_per_second: float = 0.0
    n_train_steps: int = 0
    n_val_steps: int = 0
    n_train_episodes: int = 0
    n_val_episodes: int = 0
    gradient_steps: int = 0
    weights: str = "best_heldout"
    extra: dict = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict:
        return {**asdict(self), "epochs_run": self.epochs_run}


def require_matching_architecture(
    configured: ValueNetConfig | FlowPolicyConfig,
    architecture: ValueNetConfig | FlowPolicyConfig,
    checkpoint: object,
) -> None:
    """Finetuning keeps the checkpoint's network; a config that asks for another one is refused (it used
    to be ignored silently, so a preset's finetune architecture did nothing). The fields filled in when
    a network is built (its sizes, and whether it is conditioned) are not compared. A different camera
    layout or image encoder is named first: cameras and frame sizes, expected and given."""
    require_same_layout(
        architecture.images, configured.images, f"finetuning from {checkpoint} (training config's images)"
    )
    differences = [
        f"{f.name} {getattr(configured, f.name)!r} (checkpoint: {getattr(architecture, f.name)!r})"
        for f in fields(configured)
        if f.name not in configured.BUILD_FIELDS
        and getattr(configured, f.name) != getattr(architecture, f.name)
    ]
    if differences:
        raise ValueError(
            f"finetuning from {checkpoint} keeps its architecture, but the training config asks for "
            f"{', '.join(differences)}: configure the checkpoint's architecture"
        )
