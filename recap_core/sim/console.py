"""Keep stdout for results: what the simulator prints goes to stderr while it runs.

MuJoCo prints its warnings ("Nan, Inf or huge value in QACC ...") from C straight to file descriptor 1,
past Python's ``sys.stdout``; hundreds of them broke `recap evaluate --json`. Pointing fd 1 at stderr for
the duration of a simulation (worker processes started inside inherit it) keeps stdout parseable and
the warnings visible.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def simulator_output_to_stderr() -> Iterator[None]:
    """Redirect file descriptor 1 (and ``sys.stdout``) to stderr until the block ends."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
