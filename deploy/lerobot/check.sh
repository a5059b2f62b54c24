#!/usr/bin/env bash
# A real external run: the RECAP loop with pi^k trained by lerobot-train (ACT, CPU) and evaluated
# through deploy/lerobot/serve_openpi.py, end to end, into a fresh temporary RECAP_HOME.
#
#   deploy/lerobot/check.sh [ITERATIONS]          (default 0: pre-training and iteration 0)
#
# Environment: LEROBOT_VENV (default /work/lerobot-venv; built by setup_venv.sh when it has no
# lerobot-train), RECAP (the project's `recap`, default the checkout's .venv/bin/recap), KEEP=1 keeps
# the temporary home. Prints a JSON summary at the end: wall-clock of the run and of LeRobot's
# training, and the evaluated success rate of every external policy (ledger rows).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
iterations="${1:-0}"
venv="${LEROBOT_VENV:-/work/lerobot-venv}"
recap="$(command -v "${RECAP:-$repo/.venv/bin/recap}")" || {
  echo "no recap at ${RECAP:-$repo/.venv/bin/recap}: install the project (or set RECAP)" >&2
  exit 1
}
python="$(dirname "$recap")/python" # the project's interpreter: polars and deltalake read the ledger

if [[ ! -x "$venv/bin/lerobot-train" ]]; then
  bash "$here/setup_venv.sh" "$venv"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/recap-lerobot-check.XXXXXX")"
if [[ "${KEEP:-0}" != 1 ]]; then
  trap 'rm -rf "$work"' EXIT
fi
# the preset names /work/lerobot-venv and /work/main/deploy/lerobot: point them at this machine's
sed -e "s#/work/lerobot-venv#$venv#g" -e "s#/work/main/deploy/lerobot#$here#g" \
  "$here/lerobot-act.yaml" >"$work/lerobot-act.yaml"

export RECAP_HOME="$work/home"
cd "$repo"
start="$(date +%s.%N)"
"$recap" run --preset "$work/lerobot-act.yaml" --iterations "$iterations" | tee "$work/run.log"
end="$(date +%s.%N)"

"$python" - "$RECAP_HOME" "$start" "$end" <<'EOF'
"""The run's numbers: wall-clock, LeRobot's training time (recap_external.json of each published
external policy) and the ledger's evaluations of the external policies."""
import json
import sys
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

home, start, end = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
trainings = []
for manifest in sorted((home / "checkpoints").rglob("recap_external.json")):
    record = json.loads(manifest.read_text())
    losses = [m["loss"] for m in record.get("metrics", []) if "loss" in m]
    trainings.append({
        "task": record["task"],
        "iteration": record["iteration"],
        "seconds": record["seconds"],
        "frames": record["dataset"]["frames"],
        "episodes": record["dataset"]["episodes"],
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
    })
external = {str(m.parent) for m in (home / "checkpoints").rglob("recap_external.json")}
ledger = pl.from_arrow(DeltaTable(str(home / "ledger" / "metrics")).to_pyarrow_table())
columns = ["task", "iteration", "method", "beta", "episodes", "success_rate", "success_rate_se",
           "eval_seeds", "policy_checkpoint"]
evaluations = [
    {**row, "external": row["policy_checkpoint"] in external}
    for row in ledger.select(columns).sort("task", "iteration", "method").to_dicts()
]
print(json.dumps({
    "wall_clock_s": round(end - start, 1),
    "lerobot_training": trainings,
    "lerobot_training_s": round(sum(t["seconds"] for t in trainings), 1),
    "evaluations": evaluations,
}, indent=2, default=str))
EOF
