"""Cross-fitted values: each episode valued by a value function that never trained on it."""

from __future__ import annotations

import numpy as np
import pytest
from steps_helpers import ToyEpisode, make_steps, torch_threads

from recap_core.checkpoints import predict_values
from recap_core.loop.cross_fitting import cross_fitted_values, episode_folds
from recap_core.rules import normalised_returns
from recap_core.training import train_value_function
from recap_core.training.config import ValueTrainConfig


def _memorisable_steps(episodes: int = 12, length: int = 10):
    """Success alternates, and nothing in the observations predicts it except each episode's own
    identity (a one-hot code): a value function can learn the outcomes of the episodes it saw, never of
    new ones."""
    toy = []
    for i in range(episodes):
        obs = np.zeros((length, 1 + episodes), np.float32)
        obs[:, 0] = np.arange(length)
        obs[:, 1 + i] = 1.0  # the episode's code
        toy.append(ToyEpisode("push", bool(i % 2), obs, np.zeros((length, 2), np.float32)))
    return make_steps(toy)


CONFIG = ValueTrainConfig(epochs=20, batch_size=64, weights="last", val_fraction=0.0, lr=3e-3)


def test_folds_are_stable_per_episode_and_cover_every_fold():
    ids = [f"episode-{i}" for i in range(200)]
    folds = episode_folds(ids, 4)
    assert set(folds.tolist()) == {0, 1, 2, 3}
    assert episode_folds(ids[:50], 4).tolist() == folds[:50].tolist()  # adding episodes moves none
    with pytest.raises(ValueError, match="at least 2 folds"):
        episode_folds(ids, 1)


def test_cross_fitted_values_do_not_know_the_outcomes_in_sample_values_memorised():
    steps = _memorisable_steps()
    with torch_threads(1):
        in_sample_model, _ = train_value_function(steps, CONFIG)
        in_sample = predict_values(in_sample_model, steps)
        crossed, held_out = cross_fitted_values(steps, 3, CONFIG)
        again, _ = cross_fitted_values(steps, 3, CONFIG)
    returns = normalised_returns(steps, in_sample_model.reward_config, in_sample_model.net.config.support)
    assert sum(held_out) == 12 and all(n > 0 for n in held_out)
    in_sample_error = np.abs(in_sample - returns).mean()
    crossed_error = np.abs(crossed - returns).mean()
    assert in_sample_error < 0.2 * crossed_error, (in_sample_error, crossed_error)
    np.testing.assert_array_equal(crossed, again)  # seeded: the same inputs give the same labels


def test_a_fold_that_would_hold_every_episode_is_refused():
    steps = _memorisable_steps(episodes=1)
    with pytest.raises(ValueError, match="holds all 1 episodes"):
        cross_fitted_values(steps, 2, CONFIG)


def test_the_loop_labels_with_cross_fitted_values_when_asked(tmp_path):
    import dagster as dg
    from pipeline_helpers import latest_metadata, tiny_recap

    from assets.resources import RecapResource
    from pipelines.run import run_loop
    from recap_core.checkpoints import load_value_function
    from recap_core.presets import preset_file

    (tmp_path / "folds.yaml").write_text(preset_file("tiny").read_text() + "advantage_folds: 2\n")
    recap = RecapResource(**{**tiny_recap(tmp_path).fields(), "preset": str(tmp_path / "folds.yaml")})
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance, torch_threads(1):
        run_loop(recap, instance, iterations=1, log=lambda _: None)
        meta = latest_metadata(instance, "advantages", "1|reach-v3")
        assert meta["advantage_folds"] == 2 and "in_sample_value_return_mae" in meta
        assert latest_metadata(instance, "advantages", "0|reach-v3")["advantage_folds"] == 1  # SFT
    # the stored values are not V^1's own: each episode's come from the fold model without it
    ctx = recap.run_context()
    stored = ctx.store.read_derived("advantages", filter="task = 'reach-v3' AND iteration = 1")
    vf = load_value_function(ctx.checkpoints.value_of("reach-v3", 1))
    assert stored["value_checkpoint_sha256"].unique().to_list() == [vf.checkpoint.sha256]
    assert sum(meta["episodes_per_fold"]) == stored["episode_id"].n_unique()  # each valued by one fold
    assert meta["value_return_mae"] != pytest.approx(meta["in_sample_value_return_mae"])
