"""Throughput of the method core on this machine: value labelling, training, and policy inference,
state-only and with one camera (the "images" entry: the conv encoder dominates the cost).

Everything runs on the device and precision asked for ("auto": a CUDA GPU in bfloat16 when there is
one, else the CPU in float32), reported in the JSON, so one command measures a laptop and a GPU box.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import torch

from recap_core.checkpoints.value import ValueFunction, predict_values
from recap_core.models.flow_policy import FlowChunkPolicy, FlowPolicyConfig
from recap_core.models.value import DistributionalValueFunction, ValueNetConfig
from recap_core.models.vision import CameraInputs, VisionConfig
from recap_core.steps import StepArrays
from recap_core.training.config import PolicyTrainConfig, ValueTrainConfig
from recap_core.training.device import CPU, Placement, resolve_placement
from recap_core.training.policy_training import train_policy
from recap_core.training.value_training import train_value_function


def synthetic_steps(
    n_episodes: int, length: int, obs_dim: int = 39, action_dim: int = 4, n_tasks: int = 10, seed: int = 0
) -> StepArrays:
    """Meta-World-shaped random steps (39-d observations, 4-d actions) for timing only."""
    rng = np.random.default_rng(seed)
    n = n_episodes * length
    tasks = [f"task-{i % n_tasks}" for i in range(n_episodes)]
    episodes = pl.DataFrame(
        {
            "episode_id": [f"bench-{i}" for i in range(n_episodes)],
            "task": tasks,
            "prompt": [f"solve {task} with the arm" for task in tasks],
            "kind": ["demo"] * n_episodes,
            "success": (rng.random(n_episodes) < 0.5).tolist(),
            "length": [length] * n_episodes,
            "iteration": [0] * n_episodes,
        }
    )
    return StepArrays(
        observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(n, action_dim)).astype(np.float32),
        episode_index=np.repeat(np.arange(n_episodes), length),
        t=np.tile(np.arange(length), n_episodes),
        is_correction=np.zeros(n, dtype=bool),
        episodes=episodes,
    )


def image_benchmark(
    train_batches: int, image_size: int = 64, seed: int = 0, placement: Placement = CPU
) -> dict:
    """Training samples/s and inference latency with one camera of random frames, with today's default
    encoder and, in the same run, as it was before (``before``: 32 channels wide, frames reordered to
    channels-first), so the two are measured under the same load."""
    out: dict[str, object] = {"cameras": 1, "image_size": image_size, "encoder": "conv"}
    for label, width, memory_format in (
        ("before", 32, torch.contiguous_format),
        ("now", VisionConfig().encoder_width, CameraInputs.memory_format),
    ):
        previous = CameraInputs.memory_format
        CameraInputs.memory_format = memory_format
        try:
            numbers = _image_numbers(
                train_batches,
                VisionConfig(cameras=("top",), image_size=image_size, encoder_width=width),
                seed,
                placement,
            )
        finally:
            CameraInputs.memory_format = previous
        out[label] = {
            "encoder_width": width,
            "channels_last": memory_format == torch.channels_last,
            **numbers,
        }
    before, now = out["before"], out["now"]
    for key in ("value_training_samples_per_s", "policy_training_samples_per_s"):
        out[f"{key}_speedup"] = round(now[key] / before[key], 2)  # type: ignore[index]
    return out


def _image_numbers(
    train_batches: int, vision: VisionConfig, seed: int, placement: Placement
) -> dict[str, float]:
    steps = synthetic_steps(10, 200, seed=seed)
    rng = np.random.default_rng(seed)
    size = vision.image_size
    frames = rng.integers(0, 256, size=(len(steps), size, size, 3), dtype=np.uint8)
    steps = steps.with_images({"top": frames})
    optimisation = {"epochs": 1, "steps_per_epoch": train_batches, "val_fraction": 0.0, "seed": seed}
    value_config = ValueTrainConfig(**optimisation, architecture=ValueNetConfig(images=vision))
    _, value_history = train_value_function(steps, value_config, placement=placement)
    labels = rng.random(len(steps)) < 0.3
    policy_config = PolicyTrainConfig(**optimisation, architecture=FlowPolicyConfig(images=vision))
    policy, policy_history = train_policy(steps, labels, policy_config, method="recap", placement=placement)
    chunk_policy = FlowChunkPolicy(policy.net.to(placement.device), seed=seed)
    obs, images = steps.observations[:32], {"top": frames[:32]}
    prompts = steps.episodes["prompt"].to_list()[:1] * 32
    latency = _act_seconds(chunk_policy, obs, prompts, images, placement, repeats=10)
    return {
        "value_training_samples_per_s": round(value_history.samples_per_second, 1),
        "policy_training_samples_per_s": round(policy_history.samples_per_second, 1),
        "policy_act_batch32_beta1_ms": round(latency * 1000, 2),
    }


def _act_seconds(
    policy: FlowChunkPolicy,
    obs: np.ndarray,
    prompts: list[str],
    images: dict[str, np.ndarray] | None,
    placement: Placement,
    repeats: int,
) -> float:
    """Seconds per ``act`` of a batch, after one warm-up call (each call returns numpy: synchronised)."""
    with placement.autocast():
        policy.act(obs, prompts, images=images)
        start = time.perf_counter()
        for _ in range(repeats):
            policy.act(obs, prompts, images=images)
    return (time.perf_counter() - start) / repeats


def run_benchmark(
    frames: int = 200_000,
    train_batches: int = 40,
    threads: int = 1,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
) -> dict:
    """Measure and return the numbers `recap bench core` prints, on ``device`` at ``precision``
    (``recap_core.training.device.resolve_placement``)."""
    placement = resolve_placement(device, precision)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    length = 200
    steps = synthetic_steps(max(frames // length, 2), length, seed=seed)
    vf = ValueFunction(
        DistributionalValueFunction(ValueNetConfig().sized(obs_dim=39)).to(placement.device),
        ValueTrainConfig().reward,
    )
    with placement.autocast():
        predict_values(vf, steps.select_episodes(np.arange(len(steps.episodes)) < 5))  # warm-up
        start = time.perf_counter()
        predict_values(vf, steps)
        label_seconds = time.perf_counter() - start

    optimisation = {
        "epochs": 1,
        "steps_per_epoch": train_batches,
        "val_fraction": 0.0,
        "seed": seed,
    }
    _, value_history = train_value_function(steps, ValueTrainConfig(**optimisation), placement=placement)
    labels = np.random.default_rng(seed).random(len(steps)) < 0.3
    policy, policy_history = train_policy(
        steps, labels, PolicyTrainConfig(**optimisation), method="recap", placement=placement
    )
    policy.net.to(placement.device)

    result = {
        **placement.describe(),
        "torch_threads": threads,
        "frames": len(steps),
        "value_labelling_frames_per_s": round(len(steps) / label_seconds, 1),
        "value_training_samples_per_s": round(value_history.samples_per_second, 1),
        "policy_training_samples_per_s": round(policy_history.samples_per_second, 1),
        "train_batch_size": PolicyTrainConfig().batch_size,
    }
    for beta in (1.0, 2.0):
        chunk_policy = FlowChunkPolicy(policy.net, beta=beta, seed=seed)
        obs = steps.observations[:32]
        prompts = steps.episodes["prompt"].to_list()[:1] * 32
        latency = _act_seconds(chunk_policy, obs, prompts, None, placement, repeats=30)
        key = f"policy_act_batch32_beta{beta:g}"
        result[f"{key}_ms"] = round(latency * 1000, 2)
        result[f"{key}_env_steps_per_s"] = round(32 * chunk_policy.horizon / latency, 1)
    result["images"] = image_benchmark(train_batches, seed=seed, placement=placement)
    return result
