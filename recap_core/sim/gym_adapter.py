"""Adapter from a gymnasium environment (success in ``info["success"]``) plus an expert to ``SimEnv``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

Expert = Callable[[Any, np.ndarray], np.ndarray]
"""An expert maps (the raw gymnasium env, its latest raw observation) to an action."""


class GymnasiumEnv:
    """Any ``gymnasium.Env`` with a Box action space, ``info["success"]`` and a scripted expert.

    Seeding goes through gymnasium's own ``reset(seed=...)``; environments that ignore that argument
    (Meta-World does) override ``_reset_raw``.
    """

    def __init__(self, env: gym.Env, expert: Expert, control_period: float) -> None:
        if not isinstance(env.action_space, gym.spaces.Box):
            raise TypeError(f"{type(env).__name__}: action space must be a Box, got {env.action_space}")
        self.env = env
        self._expert = expert
        self.control_period = float(control_period)
        self.action_low = np.asarray(env.action_space.low, dtype=np.float32)
        self.action_high = np.asarray(env.action_space.high, dtype=np.float32)
        self.action_dim = int(np.prod(env.action_space.shape))
        self.obs_dim = int(np.prod(env.observation_space.shape))
        self._raw_obs: np.ndarray | None = None

    def _reset_raw(self, seed: int) -> np.ndarray:
        obs, _ = self.env.reset(seed=int(seed))
        return obs

    def reset(self, seed: int) -> np.ndarray:
        self._raw_obs = self._reset_raw(seed)
        return np.asarray(self._raw_obs, dtype=np.float32).reshape(-1)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        if self._raw_obs is None:
            raise RuntimeError(f"{type(self.env).__name__}: step() called before reset()")
        obs, _reward, _terminated, _truncated, info = self.env.step(action)
        self._raw_obs = obs
        return np.asarray(obs, dtype=np.float32).reshape(-1), bool(info.get("success", False))

    def enable_rendering(self, width: int, height: int, camera: str | None = None) -> None:
        """Offscreen RGB frames from the environment's MuJoCo renderer (videos of episodes)."""
        renderer = getattr(self.env, "mujoco_renderer", None)
        if renderer is None:
            raise TypeError(
                f"{type(self.env).__name__} has no MuJoCo renderer: its episodes cannot be rendered"
            )
        self.env.render_mode = "rgb_array"
        renderer.width, renderer.height = int(width), int(height)
        if camera is not None:
            import mujoco

            camera_id = mujoco.mj_name2id(self.env.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            if camera_id < 0:
                names = [
                    mujoco.mj_id2name(self.env.model, mujoco.mjtObj.mjOBJ_CAMERA, i)
                    for i in range(self.env.model.ncam)
                ]
                raise ValueError(
                    f"{type(self.env).__name__}: no camera {camera!r}; cameras: {', '.join(names)}"
                )
            renderer.camera_id = camera_id

    def render(self) -> np.ndarray:
        """The current frame, (height, width, 3) uint8; call ``enable_rendering`` first."""
        return np.asarray(self.env.render(), dtype=np.uint8)

    def expert_action(self) -> np.ndarray:
        if self._raw_obs is None:
            raise RuntimeError(f"{type(self.env).__name__}: expert_action() called before reset()")
        return np.asarray(self._expert(self.env, self._raw_obs), dtype=np.float32)
