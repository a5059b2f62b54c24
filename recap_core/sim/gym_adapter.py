"""Adapter from a gymnasium environment (success in ``info["success"]``) plus an expert to ``SimEnv``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from recap_core.sim.camera_renderer import CameraRenderer
from recap_core.sim.render_quality import RenderQuality

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
        self.camera: str | None = None  # the camera ``render`` draws from (None: the environment's default)
        self.quality: RenderQuality | None = None  # None: the environment's own renderer and quality
        self._size: tuple[int, int] = (0, 0)
        self._renderers: dict[RenderQuality, CameraRenderer] = {}

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

    def enable_rendering(
        self, width: int, height: int, camera: str | None = None, quality: RenderQuality | None = None
    ) -> None:
        """Offscreen RGB frames: from the environment's MuJoCo renderer, or from its own gymnasium
        ``rgb_array`` rendering (an environment without MuJoCo, such as the point mass, which has no
        render quality to choose). ``quality``: see ``set_render_quality``."""
        self.env.render_mode = "rgb_array"
        if (int(width), int(height)) != self._size:
            self._renderers.clear()  # made for the old frame size
        self._size = (int(width), int(height))
        self.set_render_quality(quality)
        renderer = getattr(self.env, "mujoco_renderer", None)
        if renderer is not None:
            renderer.width, renderer.height = int(width), int(height)
        elif "rgb_array" in self.env.metadata.get("render_modes", []):
            self.env.width, self.env.height = int(width), int(height)
        else:
            raise TypeError(f"{type(self.env).__name__} cannot render: its episodes have no frames")
        if camera is not None:
            self.select_camera(camera)

    def camera_names(self) -> list[str]:
        model = getattr(self.env, "model", None)
        if getattr(self.env, "mujoco_renderer", None) is None or model is None:
            return list(getattr(self.env, "cameras", ()))
        import mujoco

        return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]

    def select_camera(self, camera: str) -> None:
        """Render from ``camera`` from now on (a MuJoCo camera of the model, or one the env names)."""
        names = self.camera_names()
        if camera not in names:
            raise ValueError(f"{type(self.env).__name__}: no camera {camera!r}; cameras: {', '.join(names)}")
        renderer = getattr(self.env, "mujoco_renderer", None)
        if renderer is not None:
            renderer.camera_id = names.index(camera)
        else:
            self.env.camera = camera
        self.camera = camera

    def set_render_quality(self, quality: RenderQuality | None) -> None:
        """Render MuJoCo cameras at ``quality`` from now on, through one renderer per quality kept for
        the environment's life (None: the environment's own renderer, at MuJoCo's default quality).
        Ignored by environments without MuJoCo, whose frames have no such settings."""
        self.quality = quality

    def _quality_renderer(self) -> CameraRenderer | None:
        """None where the environment's own renderer draws: no quality chosen, no MuJoCo, or no named
        camera (gymnasium's free camera has a configuration of its own)."""
        mujoco_renderer = getattr(self.env, "mujoco_renderer", None)
        if self.quality is None or mujoco_renderer is None or mujoco_renderer.camera_id is None:
            return None
        renderer = self._renderers.get(self.quality)
        if renderer is None:
            model, data = self.env.unwrapped.model, self.env.unwrapped.data
            renderer = CameraRenderer(model, data, *self._size, self.quality)
            self._renderers[self.quality] = renderer
        return renderer

    def render(self) -> np.ndarray:
        """The current frame, (height, width, 3) uint8; call ``enable_rendering`` first."""
        renderer = self._quality_renderer()
        if renderer is not None:
            return renderer.render(self.env.mujoco_renderer.camera_id)
        # another renderer in this process may have made its OpenGL context current since (gymnasium
        # makes its own current only when it creates it): without this its frames come out black
        viewer = getattr(getattr(self.env, "mujoco_renderer", None), "viewer", None)
        if viewer is not None:
            viewer.make_context_current()
        return np.asarray(self.env.render(), dtype=np.uint8)

    def expert_action(self) -> np.ndarray:
        if self._raw_obs is None:
            raise RuntimeError(f"{type(self.env).__name__}: expert_action() called before reset()")
        return np.asarray(self._expert(self.env, self._raw_obs), dtype=np.float32)
