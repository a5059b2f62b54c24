"""What every Dagster process (code server, daemon, webserver, run worker, step process) pays at start-up:
the code location loads, and a CLI command that only prints runs, without the libraries only a step's
work needs: torch, the simulators, plotting, statistics and the Delta ledger are imported by the step."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from paths import PROJECT_ROOT

STEP_LIBRARIES = ("torch", "matplotlib", "scipy", "deltalake", "metaworld", "mujoco")

PROBE = """
import json
import sys

{body}

print(json.dumps(sorted(name for name in {libraries!r} if name in sys.modules)))
"""


def _imported(body: str) -> list[str]:
    """The step libraries in sys.modules of a fresh interpreter once it has run ``body``."""
    script = PROBE.format(body=body, libraries=STEP_LIBRARIES)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_code_location_loads_without_the_step_libraries():
    body = "import pipelines.definitions\n\npipelines.definitions.defs.get_repository_def().get_all_jobs()"
    assert _imported(body) == []


@pytest.mark.parametrize("arguments", [["--help"], ["tasks"]])
def test_a_cli_command_that_only_prints_imports_no_step_library(arguments):
    body = (
        "from pipelines.cli.main import main\n"
        f"sys.argv = ['recap', *{arguments!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
    )
    assert _imported(body) == []
