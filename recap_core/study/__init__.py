"""The evidence study: baselines on RECAP's own data, the experiment's plan, its report and verdicts."""
