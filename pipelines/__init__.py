"""Dagster definitions, jobs, partitions, schedules, sensors and resources for the RECAP pipeline."""
