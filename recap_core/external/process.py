"""Running an external command and keeping the end of what it printed, for the error that names it."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAIL_LINES = 30


@dataclass
class TrainerRun:
    """What running a trainer gave: its exit code, its last log lines, the metrics it reported (one
    dict per report, e.g. {"step": 100, "loss": 0.21}) and any other facts it reported."""

    exit_code: int
    log_tail: list[str]
    seconds: float
    metrics: list[dict[str, Any]] = field(default_factory=list)
    reported: dict[str, Any] = field(default_factory=dict)


def run_streaming(
    command: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    on_line: Callable[[str], None] = lambda line: None,
) -> TrainerRun:
    """Run ``command`` to its end, passing each line it prints (stdout and stderr) to ``on_line`` and
    keeping the last ``TAIL_LINES``. A command that cannot start at all is an exit code of 127, with
    the reason as its only line, like a shell's."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    start = time.perf_counter()
    try:
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as error:
        return TrainerRun(127, [f"cannot start {command[0]!r}: {error}"], time.perf_counter() - start)
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.rstrip("\n")
        tail.append(line)
        on_line(line)
    code = process.wait()
    return TrainerRun(code, list(tail), time.perf_counter() - start)


class ExternalCommandError(RuntimeError):
    """An external trainer or server failed; the message names the command and its last lines."""


def command_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``extra`` on top. The project's virtual environment is taken
    off PATH and VIRTUAL_ENV, so a bare ``python`` in a template is not silently ours."""
    env = dict(os.environ)
    ours = env.pop("VIRTUAL_ENV", None)
    if ours:
        ours_bin = str(Path(ours) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != ours_bin)
    env.update(extra)
    return env


def failure(what: str, command: Sequence[str], detail: str, tail: Sequence[str]) -> ExternalCommandError:
    shown = "\n".join(f"  | {line}" for line in tail) if tail else "  (it printed nothing)"
    return ExternalCommandError(f"{what} `{shlex.join(command)}` {detail}; its last lines:\n{shown}")


def last_lines(file: Path, count: int = TAIL_LINES) -> list[str]:
    if not file.is_file():
        return []
    with file.open(errors="replace") as lines:
        return [line.rstrip("\n") for line in deque(lines, maxlen=count)]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
