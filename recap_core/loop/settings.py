"""Settings of the RECAP loop and the named presets (tiny for tests, fast for the README, full for studies).

Every constant of the method is here with the paper's default. A preset is a YAML file that names only
the settings it changes (recap_core/presets/<name>.yaml, or any file passed by path); presets only change
sizes (episodes, epochs, evaluation budget), never the rules.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from recap_core.external.config import ExternalPolicyConfig
from recap_core.locations import DEFAULT_STUDY, require_study_name
from recap_core.names import require_task_name
from recap_core.presets import preset_file
from recap_core.rules.thresholds import FINETUNE_POSITIVE_FRACTION, PRETRAIN_POSITIVE_FRACTION
from recap_core.seeds import EVAL_SPLITS
from recap_core.sim.cameras import CameraSpec
from recap_core.sim.operator import DemoConfig
from recap_core.training.config import READERS, PolicyTrainConfig, ValueTrainConfig


@dataclass(frozen=True)
class LoopSettings:
    """Algorithm 1's settings: what one RECAP run (pre-training, then iterations 0..K) does on the robot.

    ``finetune_positive_fraction_overrides`` maps a task to its own target (the paper uses 10% on some
    tasks). ``rollout_seed_stride`` keeps each iteration's initial states distinct inside the training
    seed range, so iteration k never re-collects iteration k-1's episodes.
    """

    tasks: tuple[str, ...] = ("push-v3", "pick-place-v3", "peg-insert-side-v3")
    demos_per_task: int = 40
    rollouts_per_iteration: int = 30
    intervention_share: float = 0.3
    eval_episodes: int = 50
    # `recap experiment`: each method's final-iteration policy is evaluated on this many test seeds (0:
    # eval_episodes), the claims' policies, where paired comparisons need the power; and how many
    # independent replicates a study runs unless told.
    final_eval_episodes: int = 0
    replicates: int = 1
    # The pipeline's evaluation is what runs and studies report: test seeds. Tuning (task choice, epochs,
    # beta, threshold overrides) looks only at validation seeds (`recap evaluate`'s default split).
    eval_split: str = "test"
    # The study this run belongs to: its episodes, checkpoints and ledger rows (see recap_core/locations.py).
    study: str = DEFAULT_STUDY
    lookahead: int = 50
    # 1: the paper's rule, V^k values the very episodes it trained on; F >= 2: K-fold cross-fitting, each
    # episode valued by a V trained like V^k on the other folds (recap_core/loop/cross_fitting.py).
    advantage_folds: int = 1
    # Terminal penalty of a failed episode, in steps (None: the task's episode limit L), for V_pre and
    # every V^k alike: the reward every value function's units come from (recap_core/rules/rewards.py).
    c_fail: float | None = None
    pretrain_positive_fraction: float = PRETRAIN_POSITIVE_FRACTION
    finetune_positive_fraction: float = FINETUNE_POSITIVE_FRACTION
    finetune_positive_fraction_overrides: dict[str, float] = field(default_factory=dict)
    beta: float = 1.0
    max_steps: int | None = None
    reset_time_s: float = 5.0
    # The deployment gate: pi^k goes to the robots (the serving pointer) only if its held-out success
    # rate is at least the deployed version's, on the same seeds and beta, minus this margin.
    deploy_margin: float = 0.05
    rollout_seed_stride: int = 10_000
    demo_seed_start: int = 0
    seed: int = 0
    workers: int = 0
    torch_threads: int = 1  # small networks: one thread is as fast, and training never fights collectors
    # How the training stages read steps: "memory" loads the selection once (fastest for one machine's
    # data), "streaming" reads shards of whole episodes within training_memory_mb; training_processes > 1
    # trains data-parallel under torchrun (each process reads only its own episodes).
    training_reader: str = "memory"
    training_memory_mb: int = 512
    training_processes: int = 1
    # Cameras rendered into every collected episode's image columns (Meta-World: topview, corner, corner2,
    # corner3, corner4, behindGripper, gripperPOV; point-reach: top), square, image_size pixels, and the
    # cameras every network reads (declared once, here). Empty: state only; rendering costs far more than
    # simulating on a CPU (docs/simulator.md).
    cameras: tuple[str, ...] = ()
    image_size: int = 64
    # Render quality per recorded camera (recap_core/sim/render_quality.py): "fast" (no shadows,
    # reflections or multisampling: ~10x faster on a CPU, what a 64 px policy input needs) unless named
    # here as "presentation" (MuJoCo's defaults, as evaluation videos render). Networks record it, so
    # evaluation renders each camera as its policy was trained.
    camera_quality: dict[str, str] = field(default_factory=dict)
    demo: DemoConfig = field(default_factory=DemoConfig)
    value_pretrain: ValueTrainConfig = field(default_factory=lambda: ValueTrainConfig(epochs=20))
    # V^k labels the very data it is trained on, so it keeps its last weights (in-sample fit): picking the
    # best held-out epoch stopped at epoch 1-4, where V had not yet learned how the steps left before a
    # time-out set a failure's return, and 99% of the last 50 steps of failed push rollouts came out
    # positive (against 77% of successful steps). With 30 epochs and the last weights: 46% against 69%.
    value_finetune: ValueTrainConfig = field(
        default_factory=lambda: ValueTrainConfig(epochs=30, weights="last")
    )
    policy_pretrain: PolicyTrainConfig = field(default_factory=lambda: PolicyTrainConfig(epochs=30))
    # Every finetuned policy (RECAP and the baselines) runs all its epochs and keeps its last weights: the
    # same number of gradient steps and the same rule for the final weights for every method.
    policy_finetune: PolicyTrainConfig = field(
        default_factory=lambda: PolicyTrainConfig(epochs=15, weights="last")
    )
    # pi^k trained and served by commands of another environment (lerobot-train, openpi; docs/external.md)
    # instead of this project's flow policy; empty ``train``: the flow policy. Baselines stay ours.
    external_policy: ExternalPolicyConfig = field(default_factory=ExternalPolicyConfig)

    def __post_init__(self) -> None:
        self._derive_networks()
        if not self.tasks:
            raise ValueError("LoopSettings.tasks is empty")
        for task in self.tasks:
            require_task_name(task)
        if not 0.0 <= self.intervention_share <= 1.0:
            raise ValueError(f"intervention_share must be in [0, 1], got {self.intervention_share}")
        if self.eval_episodes < 1:
            raise ValueError(f"eval_episodes must be >= 1, got {self.eval_episodes}")
        if self.advantage_folds < 1:
            raise ValueError(f"advantage_folds must be >= 1 (1: in-sample), got {self.advantage_folds}")
        if self.final_eval_episodes < 0 or self.replicates < 1:
            raise ValueError(
                f"final_eval_episodes must be >= 0 and replicates >= 1, got {self.final_eval_episodes}, "
                f"{self.replicates}"
            )
        require_study_name(self.study)
        if self.eval_split not in EVAL_SPLITS:
            raise ValueError(f"eval_split must be one of {EVAL_SPLITS}, got {self.eval_split!r}")
        if self.training_reader not in READERS:
            raise ValueError(f"training_reader must be one of {READERS}, got {self.training_reader!r}")
        self.camera_spec()  # refuses bad camera names or sizes now, not at the first render
        if self.training_memory_mb < 1 or self.training_processes < 1:
            raise ValueError(
                f"training_memory_mb and training_processes must be >= 1, got {self.training_memory_mb}, "
                f"{self.training_processes}"
            )

    def _derive_networks(self) -> None:
        """Facts each network section would otherwise repeat, filled in from where they are declared:
        the finetunes keep the pre-trained network (finetuning keeps the checkpoint's architecture), and
        every network reads the cameras the settings record, at their size."""
        value = self._with_cameras(self.value_pretrain.architecture)
        policy = self._with_cameras(self.policy_pretrain.architecture)
        for section, architecture in (
            ("value_pretrain", value),
            ("value_finetune", value),
            ("policy_pretrain", policy),
            ("policy_finetune", policy),
        ):
            config = getattr(self, section)
            if config.architecture != architecture:
                object.__setattr__(self, section, dataclasses.replace(config, architecture=architecture))

    def _with_cameras(self, architecture: Any) -> Any:
        vision = dataclasses.replace(
            architecture.images,
            cameras=tuple(self.cameras),
            image_size=self.image_size,
            render_quality=self.render_qualities(),
        )
        return dataclasses.replace(architecture, images=vision)

    def render_qualities(self) -> tuple[str, ...]:
        """One render quality per camera, in ``cameras`` order; a quality for a camera that is not
        recorded is refused, naming it (it would otherwise be ignored)."""
        unknown = sorted(set(self.camera_quality) - set(self.cameras))
        if unknown:
            raise ValueError(
                f"camera_quality names cameras {unknown} not recorded (cameras: {list(self.cameras)})"
            )
        return tuple(self.camera_quality.get(camera, "fast") for camera in self.cameras)

    def camera_spec(self) -> CameraSpec | None:
        if not self.cameras:
            return None
        return CameraSpec(tuple(self.cameras), self.image_size, self.render_qualities())

    def positive_fraction(self, task: str) -> float:
        return float(self.finetune_positive_fraction_overrides.get(task, self.finetune_positive_fraction))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


class SettingsError(ValueError):
    """A preset or an override names an unknown setting or gives one a bad value."""


def preset(source: str | Path, **overrides: Any) -> LoopSettings:
    """A preset by name or YAML path, optionally with settings replaced (e.g. tasks=("push-v3",)).

    The file and the overrides are read by the same rules (``settings_from_mapping``), so a key a file
    accepts is a key an override accepts (the Dagster resource's fields among them).
    """
    file = preset_file(source)
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise SettingsError(f"preset {file}: not valid YAML ({error})") from None
    if not isinstance(data, Mapping):
        raise SettingsError(f"preset {file}: expected a mapping of settings, got {type(data).__name__}")
    return settings_from_mapping(_merged(data, overrides), f"preset {file.name}")


def settings_from_mapping(data: Mapping[str, Any], source: str = "settings") -> LoopSettings:
    """LoopSettings from a mapping of the fields to change (nested sections change only what they name);
    an unknown key, a key the code derives from another setting, or a value of the wrong type is refused,
    naming the setting and ``source``."""
    return _build(LoopSettings, data, LoopSettings(), "", source)


def settings_from_record(record: Mapping[str, Any]) -> LoopSettings:
    """The settings a run recorded (``LoopSettings.to_dict()``), rebuilt exactly: another process of the
    same step (a torchrun rank) works with the settings the step resolved, not a second read of the
    preset. A record holds every field, derived ones included; they are derived again on the way in."""
    return _build(LoopSettings, record, LoopSettings(), "", "recorded settings", record=True)


_SECTIONS = ("value_pretrain", "value_finetune", "policy_pretrain", "policy_finetune")
DERIVED_SETTINGS: dict[str, str] = {
    **{
        f"{section}.seed": "every network's seed is derived from 'seed' (recap_core/loop/seeding.py)"
        for section in _SECTIONS
    },
    **{
        f"{section}.reward": "the reward is derived from 'c_fail' and the tasks' episode limits"
        for section in ("value_pretrain", "value_finetune")
    },
    **{
        f"{kind}_finetune.architecture": (
            f"finetuning keeps the pre-trained network: declare it once, in {kind}_pretrain.architecture"
        )
        for kind in ("value", "policy")
    },
    **{
        f"{section}.architecture.images.{name}": f"every network reads the recorded cameras: set '{setting}'"
        for section in _SECTIONS
        for name, setting in (
            ("cameras", "cameras"),
            ("image_size", "image_size"),
            ("render_quality", "camera_quality"),
        )
    },
}
"""Settings a preset may not name, because the code derives them from another one (and would not
honour them): what the reader says instead."""


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _build(
    cls: type, data: Mapping[str, Any], base: Any, where: str, source: str, record: bool = False
) -> Any:
    """``base`` (an instance of the dataclass ``cls``) with the fields ``data`` names replaced.

    ``record``: ``data`` is a complete record (``to_dict()``), whose fields filled in when a network is
    built and derived settings are read back too."""
    if not isinstance(data, Mapping):
        section = where.rstrip(".")
        raise SettingsError(f"{source}: setting '{section}' must be a mapping of settings, got {data!r}")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    built = () if record else getattr(cls, "BUILD_FIELDS", ())
    types = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        if key not in names or key in built:
            known = ", ".join(name for name in names if name not in built)
            raise SettingsError(f"{source}: unknown setting '{where}{key}'; {cls.__name__} has {known}")
        if not record and f"{where}{key}" in DERIVED_SETTINGS:
            reason = DERIVED_SETTINGS[f"{where}{key}"]
            raise SettingsError(f"{source}: setting '{where}{key}' is not set by a preset: {reason}")
        field_type = types[key]
        if dataclasses.is_dataclass(field_type) and isinstance(value, Mapping):
            values[key] = _build(field_type, value, getattr(base, key), f"{where}{key}.", source, record)
        else:
            values[key] = _value(field_type, value, f"{where}{key}", source)
    try:
        return dataclasses.replace(base, **values)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"{source}: {error}") from None


def _value(field_type: Any, value: Any, name: str, source: str) -> Any:
    """``value`` as ``field_type`` (YAML gives lists for tuples, ints for floats), or a SettingsError."""
    origin, args = typing.get_origin(field_type), typing.get_args(field_type)

    def refuse(expected: str) -> SettingsError:
        return SettingsError(f"{source}: setting '{name}' must be {expected}, got {value!r}")

    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _value(inner, value, name, source)
    if dataclasses.is_dataclass(field_type):
        if isinstance(value, field_type):
            return value
        raise refuse(f"a mapping of {field_type.__name__} settings")
    if field_type is bool:
        if not isinstance(value, bool):
            raise refuse("true or false")
        return value
    if field_type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise refuse("an integer")
        return value
    if field_type is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refuse("a number")
        return float(value)
    if field_type is str:
        if not isinstance(value, str):
            raise refuse("a string")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise refuse("a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], item, f"{name}[{i}]", source) for i, item in enumerate(value))
        if len(value) != len(args):
            raise refuse(f"a list of {len(args)} values")
        return tuple(
            _value(arg, item, f"{name}[{i}]", source)
            for i, (arg, item) in enumerate(zip(args, value, strict=True))
        )
    if origin in (dict, Mapping, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise refuse("a mapping")
        return {
            _value(args[0], key, f"{name} key", source): _value(args[1], item, f"{name}[{key!r}]", source)
            for key, item in value.items()
        }
    raise refuse(f"a {field_type}")  # a field type this reader does not know yet
