"""The query, episodes and bench commands on a real store (and a real Delta ledger table)."""

from __future__ import annotations

import json

import pyarrow as pa
from deltalake import write_deltalake
from store_helpers import make_episode
from typer.testing import CliRunner

from pipelines.cli.main import app
from recap_core.store import EpisodeStore
from recap_core.store.query import run_query


def _store(tmp_path) -> EpisodeStore:
    store = EpisodeStore(tmp_path / "lance")
    store.add_episodes([make_episode(i, length=10, kind="demo") for i in range(4)])
    store.add_episodes([make_episode(i, length=6, kind="autonomous", iteration=1) for i in range(4, 7)])
    return store


def test_query_cli_over_episodes_steps_derived_and_ledger(tmp_path, monkeypatch):
    store = _store(tmp_path)
    store.write_derived(
        "advantages", pa.table({"episode_id": ["x"], "t": [0], "advantage": [0.25]}), ["episode_id", "t"]
    )
    monkeypatch.setenv("RECAP_HOME", str(tmp_path))
    write_deltalake(
        str(tmp_path / "ledger" / "metrics"), pa.table({"task": ["reach-v3"], "success_rate": [0.8]})
    )
    runner = CliRunner()
    sql = (
        "SELECT e.kind, count(*) AS n FROM steps s JOIN episodes e USING (episode_id) "
        "GROUP BY e.kind ORDER BY e.kind"
    )
    result = runner.invoke(app, ["query", sql, "--store", store.uri, "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["kind,n", "autonomous,18", "demo,40"]
    derived = runner.invoke(
        app, ["query", "SELECT advantage FROM advantages", "--store", store.uri, "--format", "json"]
    )
    assert json.loads(derived.stdout) == [{"advantage": 0.25}]
    ledger = run_query(store, "SELECT success_rate FROM metrics")
    assert ledger["success_rate"].to_list() == [0.8]
    bad = runner.invoke(app, ["query", "SELECT * FROM nowhere", "--store", store.uri])
    assert bad.exit_code == 2 and "nowhere" in bad.output


def test_queries_answer_on_an_empty_store_and_after_a_crash_mid_creation(tmp_path, monkeypatch):
    """No table yet, or a steps folder left by a crash before its first commit: empty answers."""
    monkeypatch.setenv("RECAP_HOME", str(tmp_path))
    empty = EpisodeStore(tmp_path / "empty")
    assert run_query(empty, "SELECT 1 AS one")["one"].to_list() == [1]
    assert run_query(empty, "SELECT count(*) AS n FROM episodes")["n"].to_list() == [0]
    assert run_query(empty, "SELECT count(*) AS n FROM steps")["n"].to_list() == [0]
    store = EpisodeStore(tmp_path / "crashed")
    store.add_episodes([make_episode(0, length=5, kind="demo")])
    for table in ("steps", "episodes"):
        # the folder a writer creates before committing the first version of a table
        (tmp_path / "crashed" / f"{table}.lance").rename(tmp_path / "crashed" / f"{table}.moved")
        (tmp_path / "crashed" / f"{table}.lance" / "data").mkdir(parents=True)
    assert run_query(store, "SELECT 1 AS one")["one"].to_list() == [1]
    assert run_query(store, "SELECT count(*) AS n FROM steps")["n"].to_list() == [0]
    assert run_query(store, "SELECT count(*) AS n FROM episodes")["n"].to_list() == [0]


def test_episodes_cli_summary(tmp_path):
    store = _store(tmp_path)
    result = CliRunner().invoke(app, ["episodes", "--store", store.uri, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {(r["kind"], r["iteration"]): r for r in json.loads(result.stdout)}
    assert rows[("demo", 0)]["episodes"] == 4 and rows[("demo", 0)]["frames"] == 40
    assert rows[("demo", 0)]["success_rate"] == 0.5 and rows[("demo", 0)]["mean_length"] == 10.0
    assert rows[("autonomous", 1)]["frames"] == 18


def test_bench_store_prints_json(tmp_path):
    result = CliRunner().invoke(app, ["bench", "store", "--frames", "3000", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == 3000 and report["horizon"] == 50 and report["batch_size"] == 256
    for key in ("ingest_frames_per_s", "lance_take_frames_per_s", "steparrays_frames_per_s"):
        assert report[key] > 0
    assert report["steparrays_vs_ceiling"] == round(
        report["steparrays_frames_per_s"] / report["numpy_ceiling_frames_per_s"], 3
    )


def test_readers_refuse_a_store_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "no" / "such" / "store"
    runner = CliRunner()
    for args in (["episodes", "--store", str(missing)], ["query", "SELECT 1", "--store", str(missing)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"no episode store at {missing}" in result.output
    assert not missing.exists() and not missing.parent.exists()


def test_store_and_study_resolve_together_as_the_pipeline_resolves_them(tmp_path):
    """`recap episodes --store X --study s` read X while the pipeline writes a named study's episodes to
    X/studies/s; both now go through one function (recap_core.locations.store_uri)."""
    root = tmp_path / "lance"
    EpisodeStore(root / "studies" / "pilot").add_episodes([make_episode(i, length=5) for i in range(3)])
    EpisodeStore(root).add_episodes([make_episode(9, length=5)])
    runner = CliRunner()
    study = runner.invoke(app, ["query", "SELECT count(*) AS n FROM episodes", "--store", str(root),
                                "--study", "pilot", "--format", "csv"])  # fmt: skip
    assert study.exit_code == 0, study.output
    assert study.stdout.splitlines() == ["n", "3"]
    default = runner.invoke(
        app, ["query", "SELECT count(*) AS n FROM episodes", "--store", str(root), "--format", "csv"]
    )
    assert default.stdout.splitlines() == ["n", "1"]
    missing = runner.invoke(app, ["episodes", "--store", str(root), "--study", "nope"])
    assert missing.exit_code == 2 and "study 'nope' has no episode store" in missing.output
