"""`recap bench serve`: the JSON it prints, for one and two robots at once."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pipelines.cli.main import app


def test_bench_serve_prints_throughput_and_latency_per_client_count():
    result = CliRunner().invoke(app, ["bench", "serve", "--requests", "5", "--clients", "1,2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["horizon"] == 10 and report["obs_dim"] == 39
    for name in ("state_only", "one_camera_64px"):
        assert [row["clients"] for row in report[name]] == [1, 2]
        assert [row["requests"] for row in report[name]] == [5, 10]
        for row in report[name]:
            assert abs(row["actions_per_s"] - row["chunks_per_s"] * 10) < 1  # H actions per chunk
            assert 0 < row["latency_ms_p50"] <= row["latency_ms_p95"]
