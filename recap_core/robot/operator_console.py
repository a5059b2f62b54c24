"""The success label asked on the terminal: the recorder's default when the robot's setup has no hook."""

from __future__ import annotations

import sys
from typing import TextIO

from recap_core.robot.interfaces import EpisodeOutcome


def ask_on_terminal(
    outcome: EpisodeOutcome, stdin: TextIO | None = None, stderr: TextIO | None = None
) -> bool:
    """y or n after each episode; Enter accepts the robot's own signal when it gave one. Without a
    terminal (stdin closed) only the robot's signal can answer, else the episode is refused."""
    stdin, stderr = stdin or sys.stdin, stderr or sys.stderr
    default = outcome.robot_success
    choices = {True: "Y/n", False: "y/N", None: "y/n"}[default]
    said = {True: " (robot: success)", False: " (robot: failure)", None: ""}[default]
    while True:
        stderr.write(f"episode over after {outcome.steps} steps{said}: success? [{choices}] ")
        stderr.flush()
        line = stdin.readline()
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
        if not answer and default is not None:
            return default
        if not line:  # end of input: nobody is there to answer
            raise ValueError("no success label: stdin is closed and the robot gives no success signal")
