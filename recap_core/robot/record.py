"""``python -m recap_core.robot.record``: record episodes of a served policy on a robot into the drop folder.

    python -m recap_core.robot.record --policy ws://gpu-box:8000 --robot my_lab.arm:setup \\
        --task drawer-station-3 --prompt "open the drawer" --episodes 20 --batch-size 10 \\
        --drop-folder /mnt/fleet/drop [--api-key K] [--steps-per-chunk 10] [--max-steps 400]

``--robot`` names a factory (``package.module:function``) that builds the team's ``RobotSetup``: the
robot and the operator's takeover and success-label hooks (docs/recorder.md). ``--policy`` is a policy
server's address, or a factory of a local policy object. Progress goes to stderr; stdout gets one JSON
line with the datasets written.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from recap_core.names import require_task_name
from recap_core.robot.batches import DropFolderWriter
from recap_core.robot.interfaces import RobotSetup, SuccessLabelHook
from recap_core.robot.operator_console import ask_on_terminal
from recap_core.robot.policy import ChunkSource, connect
from recap_core.robot.recorder import RecordingSettings, as_setup, record_episodes

DESCRIPTION = (
    "Record episodes of a policy on a robot, with operator takeovers and success labels, into the fleet's "
    "drop folder as LeRobot v3.0 datasets (docs/recorder.md)."
)


def load_factory(reference: str) -> Callable[..., object]:
    """``package.module:name`` -> that callable."""
    module_name, _, name = reference.partition(":")
    if not module_name or not name:
        raise ValueError(f"{reference!r}: expected package.module:factory")
    factory = getattr(importlib.import_module(module_name), name, None)
    if not callable(factory):
        raise ValueError(f"{reference!r}: {module_name} has no callable {name!r}")
    return factory


def _pairs(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ValueError(f"{item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recap_core.robot.record", description=DESCRIPTION)
    p.add_argument(
        "--policy", required=True, help="ws://host:port of a policy server, or package.module:factory"
    )
    p.add_argument(
        "--policy-arg", action="append", default=[], metavar="KEY=VALUE", help="for a policy factory"
    )
    p.add_argument("--api-key", help="the policy server's API key")
    p.add_argument(
        "--robot", required=True, help="package.module:factory returning a RobotSetup (or a Robot)"
    )
    p.add_argument(
        "--robot-arg", action="append", default=[], metavar="KEY=VALUE", help="for the robot factory"
    )
    p.add_argument("--robot-name", help="names the datasets (default: the setup's name)")
    p.add_argument("--task", required=True, help="the recap task name the episodes are stored under")
    p.add_argument("--prompt", required=True, help="the instruction sent to the policy")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=10, help="episodes per dataset (default 10)")
    p.add_argument("--drop-folder", type=Path, required=True)
    p.add_argument("--steps-per-chunk", type=int, help="actions executed per chunk (default: all of it)")
    p.add_argument("--max-steps", type=int, help="episode limit (default: the setup's)")
    p.add_argument("--fps", type=float, help="control rate (default: the setup's)")
    p.add_argument("--video", action="store_true", help="cameras as mp4 video features (default: PNG images)")
    p.add_argument(
        "--success-label",
        choices=("ask", "robot"),
        default="ask",
        help="without a label hook in the setup: ask on the terminal (default) or take the robot's signal",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.episodes < 1:
        parser().error(f"--episodes must be >= 1, got {args.episodes}")
    try:
        task = require_task_name(args.task)
        setup = as_setup(load_factory(args.robot)(**_pairs(args.robot_arg)))
    except (ValueError, TypeError, ImportError) as error:
        parser().error(str(error))
    try:
        if args.policy.startswith(("ws://", "wss://")):
            policy = connect(args.policy, args.api_key)
        else:
            policy = load_factory(args.policy)(**_pairs(args.policy_arg))
        settings = RecordingSettings(
            task, args.prompt, args.steps_per_chunk, args.max_steps or setup.max_steps
        )
        chunks = ChunkSource(policy, args.prompt)
        fallback = ask_on_terminal if args.success_label == "ask" else None
        name, fps = args.robot_name or setup.name, args.fps or setup.fps
        writer = DropFolderWriter(
            args.drop_folder, name, fps=fps, batch_size=args.batch_size, video=args.video
        )
        interrupted = _record(setup, chunks, settings, args.episodes, writer, fallback)
    finally:
        if setup.close is not None:
            setup.close()
    report = {
        "datasets": [
            {"path": str(s.path), "episodes": s.episodes, "frames": s.frames, "kinds": s.kinds}
            for s in writer.written
        ],
        "episodes": sum(s.episodes for s in writer.written),
        "interrupted": interrupted,
    }
    print(json.dumps(report))
    return 130 if interrupted else 0


def _record(
    setup: RobotSetup,
    chunks: ChunkSource,
    settings: RecordingSettings,
    count: int,
    writer: DropFolderWriter,
    fallback: SuccessLabelHook | None,
) -> bool:
    """Record and write; True when Ctrl-C stopped it (the finished episodes are written all the same)."""
    kinds: Counter[str] = Counter()
    successes = 0
    try:
        with writer:
            for number, episode in enumerate(
                record_episodes(setup, chunks, settings, count, label_success=fallback), 1
            ):
                kinds[episode.kind] += 1
                successes += episode.success
                takeover = int(episode.is_intervention.sum())
                print(
                    f"episode {number}/{count}: {episode.length} steps, {takeover} by the operator, "
                    f"{'success' if episode.success else 'failure'}",
                    file=sys.stderr,
                )
                if (written := writer.add(episode)) is not None:
                    print(f"wrote {written.path} ({written.episodes} episodes)", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted: the finished episodes are written", file=sys.stderr)
        return True
    print(f"{sum(kinds.values())} episodes ({dict(kinds)}), {successes} successes", file=sys.stderr)
    return False


if __name__ == "__main__":
    sys.exit(main())
