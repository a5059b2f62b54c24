"""Asset checks shared by several assets: the method's invariants, evaluated on what was just written."""

import dagster as dg

from recap_core.extraction import Method
from recap_core.loop.results import LabelResult
from recap_core.loop.value_diagnostics import ValueDiagnostics
from recap_core.store import EpisodeStore
from schemas.episodes import episodes_validation_schema

POSITIVE_FRACTION_TOLERANCE = 0.02


def table_check(store: EpisodeStore, check_name: str) -> dg.AssetCheckResult:
    """The stored episodes table still satisfies its pandera schema (what every reader relies on)."""
    frame = store.lazy("episodes").collect()
    try:
        episodes_validation_schema().validate(frame, lazy=True)
    except Exception as error:  # pandera lists every failing column and value
        return dg.AssetCheckResult(
            check_name=check_name, passed=False, metadata={"errors": str(error)[:4000]}
        )
    return dg.AssetCheckResult(check_name=check_name, passed=True, metadata={"rows": frame.height})


def fraction_check(result: LabelResult, check_name: str) -> dg.AssetCheckResult:
    """Each task's share of A_t > eps_task, on the population its target is defined on (demos in
    pre-training, iteration k's own autonomous steps in finetuning), is within 2 points of the target.
    Not applicable to SFT mode, where every label is True by rule."""
    gaps = {
        task: abs(result.population_positive_fraction[task] - target)
        for task, target in result.target_fraction.items()
    }
    passed = result.mode == Method.SFT or all(gap <= POSITIVE_FRACTION_TOLERANCE for gap in gaps.values())
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=passed,
        metadata={
            "gap_per_task": dg.MetadataValue.json(gaps),
            "population": dg.MetadataValue.json(result.population),
            "population_steps": dg.MetadataValue.json(result.population_steps),
            "mode": result.mode,
        },
    )


def corrections_check(result: LabelResult, check_name: str) -> dg.AssetCheckResult:
    """Every step a human corrected is labelled positive."""
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=result.corrections_labelled_true == result.corrections,
        metadata={"correction_steps": result.corrections, "labelled_true": result.corrections_labelled_true},
    )


def value_rises_check(diagnostics: ValueDiagnostics, check_name: str) -> dg.AssetCheckResult:
    """In successful episodes V is higher over the last quarter than over the first (progress is seen)."""
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=diagnostics.value_rises,
        metadata={
            "successful_episodes": diagnostics.successful_episodes,
            "share_with_rising_value": diagnostics.share_rising,
        },
    )
