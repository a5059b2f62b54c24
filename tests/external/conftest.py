"""The stand-in external environment: a virtual environment of its own (from the base interpreter, not
this project's venv) with only what the stand-in trainer and server import, built once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

STANDIN = Path(__file__).parent / "standin"
PACKAGES = ["numpy", "pyarrow", "dagster-pipes", "websockets", "msgpack"]
OPENPI_CLIENT = "openpi-client==0.1.2"  # its msgpack_numpy only; its other requirements are not needed


@pytest.fixture(scope="session")
def standin_python(tmp_path_factory) -> Path:
    """The stand-in environment's interpreter."""
    env_dir = tmp_path_factory.mktemp("standin-env") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PACKAGES], check=True)
    subprocess.run([*pip, "--no-deps", OPENPI_CLIENT], check=True)
    probe = "import sys, dagster_pipes, pyarrow, openpi_client.msgpack_numpy; print(sys.prefix)"
    elsewhere = {"cwd": env_dir.parent, "capture_output": True, "text": True}  # not the repository
    prefix = subprocess.run([str(python), "-c", probe], check=True, **elsewhere)
    assert Path(prefix.stdout.strip()) == env_dir, "the stand-in runs in its own environment"
    for ours in ("torch", "recap_core", "dagster"):
        missing = subprocess.run([str(python), "-c", f"import {ours}"], **elsewhere)
        assert missing.returncode != 0, f"{ours} must not be importable in the stand-in environment"
    return python
