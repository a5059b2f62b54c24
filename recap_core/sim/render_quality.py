"""How carefully a MuJoCo camera is rendered: what a 64 px policy input needs against what a person
watching a video wants.

On a CPU (OSMesa, llvmpipe) almost all of a frame's cost is render quality, not the scene: a Meta-World
camera at 64x64 renders at ~9 frames/s with MuJoCo's defaults (shadows, reflections, 4x multisampling,
a 4096 px shadow map) and at ~100-120 frames/s with all four off, while the mean pixel value moves by
less than 0.1 of 255 and each pixel by ~5 on average (edges lose their anti-aliasing, the floor its
reflection). A policy reads object and goal positions, which both renderings show the same, so recorded
cameras default to ``fast``; evaluation videos, which people watch, keep ``presentation``.

The shadow map size and multisampling belong to the OpenGL context, which MuJoCo sizes from the model's
``vis.quality`` when the context is made, so they are applied while a renderer is created and the
model's values are put back right after (other renderers of the same model keep theirs); shadows and
reflections are scene flags, set on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderQuality:
    """The render settings of one camera. ``multisamples``/``shadow_map_size`` None: the model's own."""

    name: str
    shadows: bool
    reflections: bool
    multisamples: int | None
    shadow_map_size: int | None


FAST = RenderQuality("fast", shadows=False, reflections=False, multisamples=0, shadow_map_size=0)
"""For policy inputs: no shadows, reflections or multisampling, no shadow map."""

PRESENTATION = RenderQuality(
    "presentation", shadows=True, reflections=True, multisamples=None, shadow_map_size=None
)
"""MuJoCo's defaults as the model declares them: what frames looked like before ``fast`` existed."""

QUALITIES: dict[str, RenderQuality] = {quality.name: quality for quality in (FAST, PRESENTATION)}


def render_quality(name: str) -> RenderQuality:
    """The quality called ``name``; anything else is refused, naming the choices."""
    try:
        return QUALITIES[name]
    except KeyError:
        raise ValueError(f"unknown render quality {name!r}: choose one of {sorted(QUALITIES)}") from None
