"""LeRobot v3.0 datasets written from in-memory episodes, with nothing of the episode store.

The store's export (``recap_core.store.lerobot_export``) and the robot recorder (``recap_core.robot``)
write datasets through the same writer, so a robot's recording and an export read back the same way.
Only numpy, pyarrow and Pillow (PyAV for video features, imported when used): the package must import
on a robot's computer that has no Lance, polars, torch or Dagster.
"""
