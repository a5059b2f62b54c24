"""Where training runs: the placement rule, bfloat16 autocast really applied, and the CPU default
unchanged to the bit by the device plumbing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from steps_helpers import ToyEpisode, make_steps

from recap_core.models import FlowPolicyConfig, ValueNetConfig
from recap_core.training import PolicyTrainConfig, ValueTrainConfig, train_policy, train_value_function
from recap_core.training.device import CPU, resolve_placement

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
OPTIMISATION = {"epochs": 2, "batch_size": 64, "val_fraction": 0.2, "weights": "last"}


def _steps(seed: int = 0):
    rng = np.random.default_rng(seed)
    episodes = [
        ToyEpisode(
            task="reach" if i % 2 else "push",
            success=bool(i % 3),
            observations=rng.normal(size=(12, 4)),
            actions=rng.uniform(-1, 1, size=(12, 2)),
            is_correction=rng.random(12) < 0.1,
        )
        for i in range(10)
    ]
    return make_steps(episodes)


def _value_config() -> ValueTrainConfig:
    return ValueTrainConfig(**OPTIMISATION, architecture=ValueNetConfig(hidden=32, depth=2))


def _policy_config() -> PolicyTrainConfig:
    return PolicyTrainConfig(**OPTIMISATION, architecture=FlowPolicyConfig(hidden=32, depth=2, horizon=3))


@NO_GPU
def test_auto_is_the_cpu_in_float32_without_a_gpu_and_cuda_is_refused_by_name() -> None:
    placement = resolve_placement()
    assert placement.device == torch.device("cpu") and placement.precision == "fp32"
    assert placement.describe()["device"] == "cpu"
    with pytest.raises(ValueError, match="'cuda' asked for, but torch sees no CUDA device"):
        resolve_placement("cuda")
    with pytest.raises(ValueError, match="'cuda:1' asked for"):
        resolve_placement("cuda:1")


def test_unknown_devices_and_precisions_are_refused_naming_the_choices() -> None:
    for device in ("tpu", "cpu:1", "gpu"):
        with pytest.raises(ValueError, match=rf"device must be one of .* got '{device}'"):
            resolve_placement(device)
    with pytest.raises(ValueError, match=r"precision must be one of .* got 'fp16'"):
        resolve_placement("cpu", "fp16")
    assert resolve_placement("cpu", "bf16").precision == "bf16"


def test_the_cpu_placement_trains_the_same_bits_as_the_default() -> None:
    """Batches put on the device, noise drawn on the CPU's generator and moved: on the CPU all of it
    must be exactly what training did before the plumbing."""
    steps = _steps()
    labels = np.random.default_rng(1).random(len(steps)) < 0.5
    default, _ = train_policy(steps, labels, _policy_config())
    placed, _ = train_policy(steps, labels, _policy_config(), placement=resolve_placement("cpu", "fp32"))
    expected, got = default.net.state_dict(), placed.net.state_dict()
    assert list(expected) == list(got)
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), name


def test_bf16_autocast_is_applied_and_the_trained_networks_come_back_in_float32_on_the_cpu() -> None:
    steps = _steps()
    bf16 = resolve_placement("cpu", "bf16")
    labels = np.random.default_rng(1).random(len(steps)) < 0.5
    _, value_fp32 = train_value_function(steps, _value_config(), placement=CPU)
    vf_bf16, value_bf16 = train_value_function(steps, _value_config(), placement=bf16)
    policy_bf16, policy_history = train_policy(steps, labels, _policy_config(), placement=bf16)
    # autocast really ran (bfloat16 matmuls give other losses), yet trained the same problem
    assert value_bf16.train_loss != value_fp32.train_loss
    assert np.allclose(value_bf16.train_loss, value_fp32.train_loss, rtol=0.05)
    assert all(np.isfinite(policy_history.train_loss + policy_history.val_loss))
    for net in (vf_bf16.net, policy_bf16.net):
        assert {(p.device.type, p.dtype) for p in net.parameters()} == {("cpu", torch.float32)}
    # acting and labelling under autocast hand back float32 numpy
    from recap_core.checkpoints.value import predict_values
    from recap_core.models.flow_policy import FlowChunkPolicy

    with bf16.autocast():
        values = predict_values(vf_bf16, steps)
        chunks = FlowChunkPolicy(policy_bf16.net).act(steps.observations[:4], ["push"] * 4)
    assert values.dtype == np.float32 and np.isfinite(values).all()
    assert chunks.dtype == np.float32 and chunks.shape == (4, 3, 2)
