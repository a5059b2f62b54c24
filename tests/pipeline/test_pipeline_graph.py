"""The whole RECAP graph materialised in-process on tiny data, against a real Dagster instance.

One module-scoped run (pre-training, iterations 0 and 1 of one Meta-World task) feeds every assertion:
lineage facts, the method's invariants and idempotent re-materialisation.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from pipeline_helpers import (
    latest_metadata,
    stale_status,
    tiny_recap,
    unresolved_references,
    with_preset_changes,
)

from pipelines.run import materialize_iteration, run_loop
from recap_core.checkpoints import checkpoint_sha256, read_checkpoint_config
from recap_core.checkpoints.layout import read_lineage
from recap_core.ledger import read_ledger

TASK = "reach-v3"


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("recap")
    recap = tiny_recap(root)
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        table = run_loop(recap, instance, iterations=1, log=lambda _: None)
        yield recap, instance, table, root


def _checks(instance: dg.DagsterInstance, key: str) -> dict[str, bool]:
    out = {}
    for check in (
        "episodes_schema_valid",
        "value_rises_in_successes",
        "positive_fraction_on_target",
        "corrections_labelled_positive",
        "evaluated_on_held_out_seeds",
    ):
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(key), check)]
        ).get(dg.AssetCheckKey(dg.AssetKey(key), check))
        if record is not None and record.event is not None:
            out[check] = record.event.dagster_event.event_specific_data.passed
    return out


def test_cli_runs_carry_the_named_jobs_and_their_partitions(loop):
    """Runs launched from the terminal show in the UI as the code location's jobs, not an anonymous one.
    (First in the module: a later test materialises a hand-made selection.)"""
    _, instance, _, _ = loop
    runs = instance.get_runs()
    assert {run.job_name for run in runs} == {"pretraining", "recap_iteration"}
    partitions = {run.tags.get("dagster/partition") for run in runs if run.job_name == "recap_iteration"}
    assert partitions == {f"0|{TASK}", f"1|{TASK}"}
    assert all(run.tags.get("recap/trigger") for run in runs)


def test_every_step_records_the_settings_it_ran_and_the_ledger_its_beta_and_lookahead(loop):
    """The settings a run used were recorded nowhere; N and beta neither. Every materialisation now
    carries the resolved settings (enough to rebuild them exactly), every run the sha256 of them, and the
    ledger row the beta and the lookahead N of the evaluated policy."""
    from assets.metadata import SETTINGS_TAG
    from recap_core.loop.settings import settings_from_record

    recap, instance, _, _ = loop
    settings = recap.settings()
    for key, partition in (
        ("demonstrations", None),
        ("value_function_pretrained", None),
        ("advantages", f"1|{TASK}"),
        ("policy", f"1|{TASK}"),
        ("evaluation", f"1|{TASK}"),
    ):
        meta = latest_metadata(instance, key, partition)
        assert meta["settings"] == settings.to_dict(), key
        assert settings_from_record(meta["settings"]) == settings
    expected_sha = recap.run_context().settings_sha256()
    assert {run.tags.get(SETTINGS_TAG) for run in instance.get_runs()} == {expected_sha}
    assert latest_metadata(instance, "advantages", f"1|{TASK}")["lookahead"] == settings.lookahead
    assert latest_metadata(instance, "evaluation", f"1|{TASK}")["beta"] == settings.beta
    rows = read_ledger(recap.ledger()).filter(task=TASK, method="recap")
    assert set(rows["beta"].to_list()) == {settings.beta}
    assert set(rows["lookahead"].to_list()) == {settings.lookahead}


def test_finetunes_start_from_the_pretrained_checkpoints(loop):
    recap, _, _, _ = loop
    root = recap.checkpoint_layout()
    for kind in ("value", "policy"):
        pretrained_sha = read_checkpoint_config(root.pretrained(kind))
        for iteration in (0, 1):
            parent = read_checkpoint_config(root.iteration(kind, TASK, iteration))["parent"]
            assert Path(parent["path"]) == root.pretrained(kind).resolve()
            assert parent["path"] != str(root.iteration(kind, TASK, iteration - 1).resolve())
        assert pretrained_sha["parent"] is None


def test_iteration_k_reads_data_of_iterations_up_to_k_only(loop):
    recap, instance, _, _ = loop
    zero = read_lineage(recap.checkpoint_layout().iteration("value", TASK, 0))
    one = read_lineage(recap.checkpoint_layout().iteration("value", TASK, 1))
    assert set(zero["episodes_per_iteration"]) == {"0"}
    assert set(one["episodes_per_iteration"]) == {"0", "1"}
    meta = latest_metadata(instance, "value_function", f"1|{TASK}")
    assert meta["max_iteration_read"] == 1
    assert (
        meta["parent_sha256"] == latest_metadata(instance, "value_function_pretrained")["checkpoint_sha256"]
    )


def test_indicators_follow_the_rules(loop):
    recap, instance, _, _ = loop
    store = recap.store()
    labels = store.read_derived("indicators", filter=f"task = '{TASK}'")
    zero = labels.filter(pl.col("iteration") == 0)
    assert zero.height > 0 and zero["indicator"].all(), "iteration 0 is plain SFT: every indicator True"
    one = labels.filter(pl.col("iteration") == 1)
    corrections = one.filter(pl.col("is_correction"))
    assert corrections.height > 0, "the tiny preset's supervisor must have intervened at least once"
    assert corrections["indicator"].all()
    meta = latest_metadata(instance, "indicators", f"1|{TASK}")
    assert meta["threshold_population"][TASK] == "autonomous steps of iteration 1"
    assert abs(meta["population_positive_fraction"][TASK] - 0.4) <= 0.02
    per_kind = meta["positive_fraction_per_kind"][TASK]
    assert per_kind["correction"] == 1.0 and per_kind["demo"] is not None
    stored = store.read_derived("thresholds", filter=f"task = '{TASK}' AND iteration = 1")
    assert stored["population"].to_list() == ["autonomous steps of iteration 1"]
    assert stored["positive_fraction_correction"].to_list() == [1.0]
    assert _checks(instance, "indicators") == {
        "positive_fraction_on_target": True,
        "corrections_labelled_positive": True,
    }


def test_every_iteration_is_evaluated_into_the_ledger(loop):
    recap, instance, table, _ = loop
    ledger = read_ledger(recap.ledger())
    assert sorted(ledger.filter(task=TASK, method="recap")["iteration"].to_list()) == [0, 1]
    assert table.height == 2 and set(table["iteration"].to_list()) == {0, 1}
    meta = latest_metadata(instance, "evaluation", f"1|{TASK}")
    policy_sha = latest_metadata(instance, "policy", f"1|{TASK}")["checkpoint_sha256"]
    assert meta["policy_sha256"] == policy_sha
    assert _checks(instance, "evaluation") == {"evaluated_on_held_out_seeds": True}


def test_each_evaluated_iteration_is_gated_into_the_serving_pointer(loop):
    """pi^0 is the first deployment; pi^1 is published only if its held-out success is within the margin
    of pi^0's on the same seeds, and the step's metadata carries the numbers it decided on."""
    from recap_core.serving.deployment import DeploymentPointer

    recap, instance, _, _ = loop
    pointer = DeploymentPointer(recap.checkpoint_layout().root, TASK)
    first = latest_metadata(instance, "deployment", f"0|{TASK}")
    assert first["published"] and first["reason"] == "first deployment of the task"
    history = pointer.history()
    assert history[0].iteration == 0 and history[0].version == 1
    assert history[0].sha256 == latest_metadata(instance, "policy", f"0|{TASK}")["checkpoint_sha256"]
    ledger = read_ledger(recap.ledger()).filter(task=TASK, method="recap").sort("iteration")
    rates = ledger["success_rate"].to_list()
    second = latest_metadata(instance, "deployment", f"1|{TASK}")
    assert (second["candidate_success_rate"], second["deployed_success_rate"]) == (rates[1], rates[0])
    assert second["published"] == (rates[1] >= rates[0] - second["margin"]) and second["margin"] == 0.05
    assert pointer.current().iteration == (1 if second["published"] else 0)
    assert second["serving_version"] == pointer.current().version


def test_rematerialising_an_iteration_is_idempotent(loop):
    """Nothing is added twice, and an unchanged iteration retrains into exactly the checkpoints it had:
    the same content sha256, the same version folders, the same single ledger row."""
    recap, instance, _, _ = loop
    store, layout = recap.store(), recap.checkpoint_layout()
    before = store.episodes().frame
    slots = [layout.iteration(kind, TASK, 1) for kind in ("value", "policy")]
    versions_before = {slot: (slot.resolve(), checkpoint_sha256(slot)) for slot in slots}
    ledger_before = read_ledger(recap.ledger()).filter(task=TASK, iteration=1, method="recap")
    result = materialize_iteration(recap, instance, TASK, 1)
    assert result.success
    after = store.episodes().frame
    assert after.height == before.height
    assert after["episode_id"].n_unique() == after.height
    meta = latest_metadata(instance, "experience", f"1|{TASK}")
    assert meta["added"] == 0 and meta["skipped_already_stored"] > 0
    advantages = store.read_derived("advantages", filter=f"task = '{TASK}' AND iteration = 1")
    assert advantages.select("episode_id", "t").is_duplicated().sum() == 0
    for slot, (version, sha) in versions_before.items():
        assert (slot.resolve(), checkpoint_sha256(slot)) == (version, sha), slot
        assert [v.name for v in layout.versions(slot)] == [version.name], "no second version"
    ledger_after = read_ledger(recap.ledger()).filter(task=TASK, iteration=1, method="recap")
    assert ledger_after.height == ledger_before.height == 1
    assert ledger_after["policy_sha256"].to_list() == ledger_before["policy_sha256"].to_list()


def test_lineage_metadata_records_versions_and_pictures(loop):
    recap, instance, _, _ = loop
    meta = latest_metadata(instance, "advantages", f"1|{TASK}")
    assert set(meta["table_versions"]) >= {"episodes", "steps"}
    assert meta["values_along_episodes"].startswith("![")
    # V^1 next to V^0 on iteration 1's new episodes (V^0 never saw them)
    settings = recap.settings()
    assert meta["held_out/new_episodes"] == settings.rollouts_per_iteration
    assert meta["held_out/mae_in_sample"] >= 0 and meta["held_out/mae_previous_value_function"] >= 0
    assert 0 <= meta["held_out/indicator_agreement"] <= 1 and 0.5 <= meta["held_out/chance_agreement"] <= 1
    assert "held_out/new_episodes" not in latest_metadata(instance, "advantages", f"0|{TASK}")
    evaluation = latest_metadata(instance, "evaluation", f"1|{TASK}")
    assert "data:image/png;base64," in evaluation["throughput_per_iteration"]
    assert np.isfinite(evaluation["success_rate"])
    assert json.dumps(meta["table_versions"])


def test_policy_lineage_names_the_indicator_version_it_trained_on(loop):
    recap, _, _, _ = loop
    lineage = read_lineage(recap.checkpoint_layout().iteration("policy", TASK, 1))
    labels = recap.store().read_derived(
        "indicators", filter=f"task = '{TASK}' AND iteration = 1", version=lineage["versions"]["indicators"]
    )
    assert labels.height == lineage["steps"]


def test_a_policy_refuses_labels_made_under_another_value_function(loop, tmp_path):
    recap, instance, _, _ = loop
    from assets.policy import policy
    from assets.value_function import value_function
    from pipelines.definitions import ALL_ASSETS

    changed = with_preset_changes(recap, tmp_path, value_finetune={"epochs": 2})

    def only(asset, resource):
        return dg.materialize(
            ALL_ASSETS,
            selection=[asset],
            instance=instance,
            resources={"recap": resource},
            partition_key=f"1|{TASK}",
            raise_on_error=False,
        )

    assert only(value_function, changed).success  # a new V^1; its advantages and indicators are now stale
    stale = only(policy, changed)
    assert not stale.success
    failure = next(e for e in stale.all_events if e.event_type_value == "STEP_FAILURE")
    assert "re-materialise the stages after the value function" in str(failure.event_specific_data.error)
    assert materialize_iteration(changed, instance, TASK, 1).success  # the full iteration repairs it
    assert not unresolved_references(recap), "the replaced V^1 is kept: the old labels still name it"


def test_retraining_the_previous_policy_does_not_recollect_an_iteration(loop, tmp_path):
    """A new pi^0 (another epoch count) is another checkpoint, and iteration 1's rollouts, collected by
    the old one, are neither collected again nor left naming a deleted checkpoint."""
    recap, instance, _, _ = loop
    store, layout = recap.store(), recap.checkpoint_layout()
    rollouts = recap.settings().rollouts_per_iteration
    assert store.episodes(task=TASK, iteration=1).frame.height == rollouts
    pi_0 = layout.iteration("policy", TASK, 0)
    old_version = pi_0.resolve()
    assert stale_status(instance, "experience", f"1|{TASK}")[0] == "FRESH"
    changed = with_preset_changes(recap, tmp_path, policy_finetune={"epochs": 2})
    assert materialize_iteration(changed, instance, TASK, 0).success  # pi^0 re-trained: a new checkpoint
    assert pi_0.resolve() != old_version and old_version.is_dir()
    assert [v.name for v in layout.versions(pi_0)][-2:] == [old_version.name, pi_0.resolve().name]
    # iteration 1 was collected by the old pi^0: the UI shows it as stale, naming why
    assert stale_status(instance, "experience", f"1|{TASK}") == ("STALE", ["collecting_policy"])
    assert materialize_iteration(changed, instance, TASK, 1).success
    assert store.episodes(task=TASK, iteration=1).frame.height == rollouts
    assert stale_status(instance, "experience", f"1|{TASK}")[0] == "FRESH"
    assert not unresolved_references(recap)
