"""Recording on a real robot: a served policy drives, an operator may take over, episodes land in the
fleet's drop folder as LeRobot v3.0 datasets (docs/recorder.md).

Client-side only: numpy, pyarrow, Pillow and the standard library at import time, no torch and no
Dagster, so it runs on the robot's own computer. The robot and the operator's devices are the team's
code behind the small protocols of ``interfaces``; ``recorder`` runs episodes, ``batches`` writes them
atomically, ``record`` is the command line (``python -m recap_core.robot.record``).
"""
