"""Simulator warnings never reach stdout, so `--json` output stays parseable.

MuJoCo prints "Nan, Inf or huge value ..." from C to file descriptor 1; a policy commanding NaN actions
triggers it for real, in a child process whose stdout the test reads byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from paths import TESTS

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from sim_helpers import ConstantChunkPolicy
    from recap_core.sim import RolloutConfig, eval_seeds, evaluate_policy, get_task, with_max_steps
    from recap_core.sim.console import simulator_output_to_stderr

    guarded = sys.argv[2] == "guarded"
    task = with_max_steps(get_task("push-v3"), 20)
    policy = ConstantChunkPolicy([np.nan] * 4)
    if guarded:
        with simulator_output_to_stderr():
            result = evaluate_policy(policy, task, eval_seeds(2), config=RolloutConfig(num_envs=2))
    else:
        result = evaluate_policy(policy, task, eval_seeds(2), config=RolloutConfig(num_envs=2))
    print(json.dumps({"success_rate": result.success_rate}))
    """
)


def _run(mode: str, cwd: Path) -> subprocess.CompletedProcess:
    """In ``cwd``: MuJoCo also appends its warnings to MUJOCO_LOG.TXT in the working directory."""
    tests = str(TESTS)
    return subprocess.run(
        [sys.executable, "-c", CHILD, tests, mode], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_simulator_warnings_go_to_stderr_and_stdout_stays_json(tmp_path):
    unguarded = _run("unguarded", tmp_path)
    assert "Nan, Inf or huge value" in unguarded.stdout, "the probe must really make MuJoCo warn"
    guarded = _run("guarded", tmp_path)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert json.loads(guarded.stdout) == {"success_rate": 0.0}
    assert "Nan, Inf or huge value" in guarded.stderr
