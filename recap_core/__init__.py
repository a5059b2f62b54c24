"""RECAP as a plain library: the method, the episode store and the simulated robot, free of Dagster."""

__version__ = "0.1.0"
