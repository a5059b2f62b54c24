"""Draws docs/figures/render-quality.png: the same states of reach-proprio-v3 (the pixels preset's
task, the goal only in the camera) and push-v3 at 64 px, rendered ``fast`` (recorded cameras) and
``presentation`` (evaluation videos), scaled up 4x without smoothing so each pixel shows.

Run from the project root: ``python docs/figures/render_quality.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from recap_core.sim.render_quality import FAST, PRESENTATION
from recap_core.sim.tasks import get_task
from recap_core.sim.video import use_offscreen_rendering

SCALE, SIZE = 4, 64
VIEWS = (("reach-proprio-v3", "topview", 1), ("push-v3", "topview", 3), ("push-v3", "corner", 3))


def _frame(task: str, camera: str, seed: int, quality) -> np.ndarray:
    env = get_task(task).make_env()
    env.reset(seed)
    env.enable_rendering(SIZE, SIZE, camera, quality)
    return env.render()


def main() -> None:
    use_offscreen_rendering()
    tile, label = SIZE * SCALE, 18
    sheet = Image.new("RGB", (2 * tile + 10, len(VIEWS) * (tile + label) + label), "white")
    draw = ImageDraw.Draw(sheet)
    for column, quality in enumerate((FAST, PRESENTATION)):
        draw.text((column * (tile + 10) + 4, 2), f"{quality.name} (64 px)", fill="black")
    for row, (task, camera, seed) in enumerate(VIEWS):
        top = label + row * (tile + label)
        draw.text((4, top + 2), f"{task} / {camera}", fill="black")
        for column, quality in enumerate((FAST, PRESENTATION)):
            image = Image.fromarray(_frame(task, camera, seed, quality)).resize((tile, tile), Image.NEAREST)
            sheet.paste(image, (column * (tile + 10), top + label))
    out = Path(__file__).with_name("render-quality.png")
    sheet.save(out)
    print(out)


if __name__ == "__main__":
    main()
