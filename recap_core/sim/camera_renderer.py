"""One offscreen MuJoCo renderer per environment and render quality, made once and reused for every step.

Gymnasium's own renderer draws at MuJoCo's default quality only; this one applies a ``RenderQuality``
(recap_core.sim.render_quality) and returns frames in the same orientation as gymnasium's, so an
environment's own corrections (Meta-World's upside-down corner cameras) apply unchanged. It owns its
OpenGL context, made from the backend MUJOCO_GL names when the renderer is created (``mujoco.Renderer``
would use the backend chosen when mujoco was first imported, which in a worker can be before MUJOCO_GL
is set), and makes it current before every frame, so several renderers share a process. The OpenGL
and MuJoCo contexts are freed with the renderer (both free themselves when collected).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np

from recap_core.sim.render_quality import RenderQuality


class CameraRenderer:
    """Frames of ``model``/``data`` from fixed cameras at ``width`` x ``height`` and one quality."""

    def __init__(self, model: Any, data: Any, width: int, height: int, quality: RenderQuality) -> None:
        import mujoco

        self._mujoco = mujoco
        self.model, self.data, self.quality = model, data, quality
        backend = os.environ.get("MUJOCO_GL", "osmesa")
        self._context = importlib.import_module(f"mujoco.{backend}").GLContext(int(width), int(height))
        self._context.make_current()
        self._scene = mujoco.MjvScene(model, maxgeom=1000)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = quality.shadows
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = quality.reflections
        self._option, self._perturb = mujoco.MjvOption(), mujoco.MjvPerturb()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        saved = (model.vis.quality.offsamples, model.vis.quality.shadowsize)
        try:
            if quality.multisamples is not None:
                model.vis.quality.offsamples = quality.multisamples
            if quality.shadow_map_size is not None:
                model.vis.quality.shadowsize = quality.shadow_map_size
            self._gpu = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        finally:
            model.vis.quality.offsamples, model.vis.quality.shadowsize = saved
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._gpu)
        self._viewport = mujoco.MjrRect(0, 0, int(width), int(height))
        self._pixels = np.empty((int(height), int(width), 3), dtype=np.uint8)

    def render(self, camera_id: int) -> np.ndarray:
        """A new (height, width, 3) uint8 frame of the current state from fixed camera ``camera_id``."""
        mujoco = self._mujoco
        self._context.make_current()
        self._camera.fixedcamid = int(camera_id)
        mujoco.mjv_updateScene(
            self.model,
            self.data,
            self._option,
            self._perturb,
            self._camera,
            mujoco.mjtCatBit.mjCAT_ALL,
            self._scene,
        )
        mujoco.mjr_render(self._viewport, self._scene, self._gpu)
        mujoco.mjr_readPixels(self._pixels, None, self._viewport, self._gpu)
        return self._pixels[::-1].copy()  # OpenGL's first row is the bottom one; gymnasium flips it too
