"""Camera observations from the simulator: rendered offscreen on this CPU-only machine, recorded step
by step next to the observations, stored losslessly in the episode's image columns."""

from __future__ import annotations

import numpy as np
import pytest

from recap_core.loop.settings import LoopSettings
from recap_core.models.vision import VisionConfig
from recap_core.sim.cameras import (
    CameraEnv,
    CameraSpec,
    cameras_of,
    decode_frames,
    encode_frames,
    with_cameras,
    with_policy_cameras,
)
from recap_core.sim.gym_adapter import GymnasiumEnv
from recap_core.sim.operator import DemoConfig, collect_demos
from recap_core.sim.render_quality import FAST, PRESENTATION
from recap_core.sim.rollouts import RolloutConfig, run_policy
from recap_core.sim.tasks import get_task, with_max_steps
from recap_core.store import EpisodeStore

PERFECT = DemoConfig(noise_range=(0.0, 0.0), mistake_rate=0.0, failure_share=0.0)


def _mass_pixel(frame: np.ndarray) -> np.ndarray:
    """Centre (x, y) of the red disc (the point mass) in a point-reach frame."""
    red = (frame[..., 0] > 150) & (frame[..., 1] < 100) & (frame[..., 2] < 100)
    ys, xs = np.nonzero(red)
    return np.array([xs.mean(), ys.mean()])


def _expected_pixel(observation: np.ndarray, size: int) -> np.ndarray:
    x, y = np.clip(observation[0:2], -1.5, 1.5)
    return np.array([(x + 1.5) / 3.0 * (size - 1), (1.5 - y) / 3.0 * (size - 1)])


class _Wander:
    """A fixed-chunk policy that moves the mass around (not towards the goal)."""

    horizon = 4

    def act(self, observations, prompts):
        return np.tile(np.array([[0.8, -0.5]], dtype=np.float32), (len(observations), self.horizon, 1))


def test_each_recorded_frame_shows_the_state_of_its_step():
    task = with_cameras(with_max_steps(get_task("point-reach"), 40), CameraSpec(("top",), size=48))
    (demo,) = collect_demos(task, [3], PERFECT)
    frames = decode_frames(demo.images["top"])
    assert frames.shape == (demo.length, 48, 48, 3)
    for t in range(demo.length):
        np.testing.assert_allclose(
            _mass_pixel(frames[t]), _expected_pixel(demo.observations[t], 48), atol=1.0
        )
    assert not np.array_equal(frames[0], frames[-1]), "the mass moved"


@pytest.mark.parametrize("workers", [0, 1])
def test_rollouts_record_frames_in_process_and_in_worker_processes(workers):
    task = with_cameras(with_max_steps(get_task("point-reach"), 12), CameraSpec(("top",), size=32))
    rollouts = list(run_policy(_Wander(), task, [5, 6], RolloutConfig(num_envs=2, workers=workers)))
    assert len(rollouts) == 2
    for rollout in rollouts:
        frames = rollout.frames["top"]
        assert frames.shape == (len(rollout.observations), 32, 32, 3)
        for t in (0, len(frames) - 1):
            np.testing.assert_allclose(
                _mass_pixel(frames[t]), _expected_pixel(rollout.observations[t], 32), atol=1.0
            )


def test_frames_survive_the_store_byte_for_byte(tmp_path):
    task = with_cameras(with_max_steps(get_task("point-reach"), 15), CameraSpec(("top",), size=32))
    episodes = list(collect_demos(task, [0, 1], PERFECT))
    store = EpisodeStore(tmp_path / "lance")
    assert len(store.add_episodes(episodes).added) == 2
    for episode in episodes:
        stored = store.episode_images(episode.episode_id, "top")
        assert stored == episode.images["top"]
        np.testing.assert_array_equal(decode_frames(stored), decode_frames(episode.images["top"]))
    assert store.load_steps().observations.shape[0] == sum(e.length for e in episodes)


def test_metaworld_renders_its_cameras_offscreen():
    spec = CameraSpec(("corner", "topview"), size=32)
    task = with_cameras(with_max_steps(get_task("reach-v3"), 8), spec)
    (demo,) = collect_demos(task, [0], PERFECT)
    for camera in spec.names:
        frames = decode_frames(demo.images[camera])
        assert frames.shape == (demo.length, 32, 32, 3)
        assert frames.std() > 5, f"{camera}: a blank frame"
    corner, top = (decode_frames(demo.images[c]) for c in spec.names)
    assert np.abs(corner.astype(int) - top.astype(int)).mean() > 10, "two cameras, two views"


def _greyness(rows: np.ndarray) -> float:
    """Share of pixels with no colour: the grey wall behind the table, not the wood, robot or floor."""
    rows = rows.astype(int)
    return float(((rows.max(-1) - rows.min(-1)) < 12).mean())


def test_metaworld_corner_cameras_are_upright():
    names = ("corner", "corner2", "corner3", "corner4", "topview")
    env = with_cameras(get_task("reach-v3"), CameraSpec(names, size=64)).make_env()
    env.reset(1)
    frames = env.frames()
    # the default view has the wall at the top and the table below it, as a person would film it
    corner = frames["corner"]
    assert _greyness(corner[:16]) > _greyness(corner[-16:]) + 0.1
    # exactly the corner cameras are flipped; the others come as MuJoCo renders them
    raw = env.env
    for name in names:
        raw.select_camera(name)
        drawn = GymnasiumEnv.render(raw)  # the adapter's frame, before Meta-World's correction
        expected = drawn[::-1] if name.startswith("corner") else drawn
        np.testing.assert_array_equal(frames[name], expected, err_msg=name)


def test_recorded_cameras_render_fast_and_presentation_is_exactly_gymnasiums_rendering():
    """Fast frames show the same scene (the same mean colour within a few levels, the same arm and
    object positions) without MuJoCo's costly effects; ``presentation`` is gymnasium's own renderer
    pixel for pixel, so a camera named ``presentation`` records what every camera recorded before."""
    spec = CameraSpec(("corner", "topview"), size=64, qualities=("fast", "presentation"))
    env = with_cameras(get_task("push-v3"), spec).make_env()
    env.reset(3)
    frames = env.frames()
    raw = env.env
    for name in spec.names:
        raw.select_camera(name)
        raw.set_render_quality(None)  # gymnasium's renderer, at MuJoCo's defaults
        gymnasiums = raw.render()
        raw.set_render_quality(PRESENTATION)
        np.testing.assert_array_equal(raw.render(), gymnasiums, err_msg=name)
        raw.set_render_quality(FAST)
        fast = raw.render()
        difference = np.abs(fast.astype(int) - gymnasiums.astype(int))
        assert 0.5 < difference.mean() < 20, f"{name}: fast differs from presentation by {difference.mean()}"
        assert abs(float(fast.mean()) - float(gymnasiums.mean())) < 15, name
    np.testing.assert_array_equal(frames["topview"], _render(raw, "topview", PRESENTATION))
    assert not np.array_equal(frames["corner"], _render(raw, "corner", PRESENTATION))
    np.testing.assert_array_equal(frames["corner"], _render(raw, "corner", FAST)[::-1])  # upright
    raw.enable_rendering(32, 32, "corner", FAST)  # another size: renderers of the new size
    assert raw.render().shape == (32, 32, 3)


def _render(env, camera, quality):
    env.select_camera(camera)
    env.set_render_quality(quality)
    return GymnasiumEnv.render(env)


def test_a_fast_frame_still_shows_where_the_hidden_goal_is():
    """reach-proprio-v3 hides the goal from the state: the topview camera's goal dot is all a policy has.
    Every reset puts the arm in the same pose, so what differs between two seeds' first frames is the
    goal alone; in fast frames it must differ at the same place as in presentation frames."""
    spec = CameraSpec(("topview",), size=64)
    env = with_cameras(get_task("reach-proprio-v3"), spec).make_env()
    frames = {}
    for seed in (1, 2, 3):
        env.reset(seed)
        frames[seed] = {
            "fast": env.frames()["topview"],
            "presentation": _render(env.env, "topview", PRESENTATION),
        }
    for a, b in ((1, 2), (2, 3), (3, 1)):
        centres = {
            quality: _goal_centre(frames[a][quality], frames[b][quality])
            for quality in ("fast", "presentation")
        }
        assert np.abs(centres["fast"] - centres["presentation"]).max() <= 1.0, (a, b, centres)


def _goal_centre(frame: np.ndarray, other_goal: np.ndarray) -> np.ndarray:
    """Centre of the goal dot in ``frame``: the bright red pixels (the dot is pure red, the arm a dark
    one) that another goal's frame does not have."""
    pixels = frame.astype(int)
    changed = np.abs(pixels - other_goal.astype(int)).sum(-1) > 60
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    ys, xs = np.nonzero(changed & red)
    assert 0 < len(xs) < 20, f"{len(xs)} pixels of a goal dot"
    return np.array([xs.mean(), ys.mean()])


def test_a_policy_is_rendered_the_quality_it_learnt_from_and_a_clash_is_refused():
    task = with_cameras(get_task("push-v3"), CameraSpec(("corner",), 64))
    with pytest.raises(ValueError, match=r"corner: presentation \(policy\) against fast \(recording\)"):
        with_policy_cameras(task, ("corner",), 64, ("presentation",))
    both = with_policy_cameras(task, ("corner", "topview"), 64, ("fast", "presentation"))
    assert cameras_of(both) == CameraSpec(("corner", "topview"), 64, ("fast", "presentation"))
    # a layout stored before render qualities existed learnt from MuJoCo's defaults
    assert VisionConfig.from_dict({"cameras": ["corner"], "image_size": 64}).render_quality == (
        "presentation",
    )
    assert VisionConfig(cameras=("corner",)).render_quality == ("fast",)
    settings = LoopSettings(
        tasks=("push-v3",), cameras=("corner", "topview"), camera_quality={"topview": "presentation"}
    )
    assert settings.camera_spec().qualities == ("fast", "presentation")
    assert settings.policy_finetune.architecture.images.render_quality == ("fast", "presentation")
    with pytest.raises(ValueError, match=r"camera_quality names cameras \['wrist'\] not recorded"):
        LoopSettings(tasks=("push-v3",), cameras=("corner",), camera_quality={"wrist": "fast"})
    with pytest.raises(ValueError, match="unknown render quality 'pretty'"):
        LoopSettings(tasks=("push-v3",), cameras=("corner",), camera_quality={"corner": "pretty"})


def test_proprioceptive_metaworld_hides_the_goal_and_objects():
    full, proprio = get_task("reach-v3").make_env(), get_task("reach-proprio-v3").make_env()
    assert proprio.obs_dim == 8
    for seed in (1, 2):
        whole, seen = full.reset(seed), proprio.reset(seed)
        np.testing.assert_array_equal(seen, whole[[0, 1, 2, 3, 18, 19, 20, 21]])
        action = proprio.expert_action()
        np.testing.assert_array_equal(action, full.expert_action())  # the operator still sees the goal
        whole, _ = full.step(action)
        seen, _ = proprio.step(action)
        np.testing.assert_array_equal(seen, whole[[0, 1, 2, 3, 18, 19, 20, 21]])
    # two initial states with different goals look the same to the robot: only a camera tells them apart
    assert not np.allclose(full.reset(1)[36:39], full.reset(2)[36:39])
    np.testing.assert_array_equal(proprio.reset(1), proprio.reset(2))


def test_bad_cameras_are_refused_by_name():
    with pytest.raises(ValueError, match="image size must be in"):
        LoopSettings(tasks=("push-v3",), cameras=("corner",), image_size=8)
    with pytest.raises(ValueError, match=r"camera names \['image.front'\]"):
        LoopSettings(tasks=("push-v3",), cameras=("image.front",))
    with pytest.raises(ValueError, match="no camera 'front'; cameras: top"):
        CameraEnv(get_task("point-reach").make_env(), CameraSpec(("front",), size=32))
    assert encode_frames(None) is None
