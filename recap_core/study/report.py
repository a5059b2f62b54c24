"""The study's report: Markdown tables and PNG plots, every number read back from the Delta ledger.

Nothing here sees a policy or an episode. The report is a pure function of one Delta version of the
metrics ledger (recorded in the report), so it can be regenerated at any time, and a rerun of the same
seeded experiment on the same machine gives the same tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from recap_core.extraction import BASELINES, RECAP_UNGUIDED, REPORT_ORDER, Method
from recap_core.ledger import ledger_version, newest_evaluations, read_ledger
from recap_core.locations import DEFAULT_STUDY, outcomes_uri
from recap_core.loop.plots import _png, progress_per_iteration
from recap_core.outcomes import evaluation_outcomes, outcomes_version, read_outcomes
from recap_core.study.paired import Statistic, paired_bootstrap, paired_replicate
from recap_core.study.verdicts import Direction, Interval, ratios, t_interval, verdict

THROUGHPUT_TARGET = 2.0  # paper: RECAP more than doubles throughput on the hardest task
FAILURE_TARGET = 0.5  # paper: RECAP roughly halves the failure rate


@dataclass
class Report:
    """The written report: where it is, its text, its pictures and the ledger rows behind it."""

    directory: Path
    markdown: str
    images: dict[str, bytes]
    rows: pl.DataFrame
    ledger_version: int
    targets: list[dict] = field(default_factory=list)
    outcomes_version: int | None = None


def experiment_rows(
    ledger_uri: str,
    tasks: Sequence[str],
    iterations: int,
    version: int | None = None,
    studies: Sequence[str] = (DEFAULT_STUDY,),
    split: str = "test",
) -> tuple[pl.DataFrame, int]:
    """The newest evaluation on ``split`` seeds of each (study, task, iteration, method), iterations
    0..K, of the given studies (a study's replicates), at one ledger version. A study report reads test
    seeds; a study run on validation seeds (``eval_split: validation``, for choosing settings) reports
    its validation rows, titled as such, and never mixes the two."""
    if version is None:
        version = ledger_version(ledger_uri)
    rows = read_ledger(ledger_uri, version=version).filter(
        pl.col("task").is_in(list(tasks)),
        pl.col("iteration") <= iterations,
        pl.col("study").is_in(list(studies)),
    )
    if rows.filter(split=split).is_empty():
        raise ValueError(
            f"ledger {ledger_uri} (version {version}) has no {split}-seed evaluations of {', '.join(tasks)} "
            f"at iterations <= {iterations} in study {', '.join(studies)}: run the experiment first"
        )
    newest = (
        newest_evaluations(rows, split)
        .with_columns(
            pl.col("method")
            .replace_strict({m: i for i, m in enumerate(REPORT_ORDER)}, default=99)
            .alias("_o")
        )
        .sort("study", "task", "iteration", "_o")
        .drop("_o")
    )
    return newest, version


def _replicates(rows: pl.DataFrame) -> list[pl.DataFrame]:
    return [rows.filter(study=study) for study in sorted(set(rows["study"].to_list()))]


def _over_replicates(rows: pl.DataFrame, task: str, iteration: int, method: str, column: str) -> Interval:
    values = rows.filter(task=task, iteration=iteration, method=method)[column].to_list()
    return t_interval([math.nan if v is None else float(v) for v in values])  # no success: no duration


def _pm(value: float | None, se: float | None, scale: float = 1.0, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value * scale:.{digits}f}"
    if se is None or (isinstance(se, float) and math.isnan(se)):
        return text
    return f"{text} ± {se * scale:.{digits}f}"


def _row_cells(row: dict) -> list[str]:
    return [
        _pm(row["success_rate"], row["success_rate_se"], 100.0),
        _pm(row["mean_duration_s"], row["mean_duration_s_se"], 1.0, 2),
        _pm(row["throughput_per_hour"], row["throughput_per_hour_se"]),
    ]


def _table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def _get(rows: pl.DataFrame, task: str, iteration: int, method: str) -> dict | None:
    part = rows.filter(task=task, iteration=iteration, method=method)
    return part.row(0, named=True) if part.height else None


Episodes = dict[int, tuple[bool, float]]  # seed -> (success, robot hours incl. the reset)


def _episodes(outcomes: pl.DataFrame | None, row: dict | None) -> Episodes | None:
    """The episodes behind one ledger row, None when they were not recorded (rows written before the
    outcomes table existed, or edited by hand) or do not add up to the row's episode count."""
    if outcomes is None or row is None:
        return None
    found = evaluation_outcomes(outcomes, row)
    if found.height != row["episodes"]:
        return None
    hours = (found["duration_s"] + found["reset_s"]) / 3600.0
    return dict(
        zip(
            found["seed"].to_list(),
            zip(found["success"].to_list(), hours.to_list(), strict=True),
            strict=True,
        )
    )


def _paired(
    outcomes: pl.DataFrame | None, pairs: list[tuple[dict, dict]], statistic: Statistic
) -> Interval | None:
    """The paired bootstrap of A (first of each pair) against B over the replicates; None unless every
    replicate's episodes of both are stored (an interval over fewer replicates than the t-interval's
    would not judge the same claim)."""
    replicates = []
    for a_row, b_row in pairs:
        a, b = _episodes(outcomes, a_row), _episodes(outcomes, b_row)
        if a is None or b is None:
            return None
        replicates.append(paired_replicate(a, b))
    return paired_bootstrap(replicates, statistic) if replicates else None


def _paired_verdict(paired: Interval | None, direction: Direction, target: float, fallback: str) -> str:
    """The claim's verdict from its paired interval; with one replicate training noise is unmeasured, so
    never met or missed; without stored episodes, the t-interval's verdict."""
    if paired is None:
        return fallback
    if math.isnan(paired.mean):
        return "undefined"
    if paired.replicates < 2:
        return "inconclusive"
    return verdict(paired, direction, target)


def _claim(
    task: str,
    claim: str,
    values: list[float],
    direction: Direction,
    target: float,
    paired: Interval | None = None,
    floor: float | None = None,
    ceiling: float | None = None,
) -> dict:
    """One claim judged two ways: the t-interval over replicate values (clipped to [``floor``,
    ``ceiling``], what the quantity can be) and the paired bootstrap, whose verdict is the claim's."""
    interval = t_interval(values)
    interval = interval.clipped(low=floor, high=ceiling)
    t_verdict = verdict(interval, direction, target)
    return {
        "task": task,
        "claim": claim,
        "value": interval.mean,
        "interval": interval,
        "paired": paired,
        "target": f"{direction} {target:g}",
        "t_verdict": t_verdict,
        "verdict": _paired_verdict(paired, direction, target, t_verdict),
    }


def _targets(
    replicates: Sequence[pl.DataFrame], tasks: Sequence[str], final: int, outcomes: pl.DataFrame | None = None
) -> list[dict]:
    """The paper's claims per task, each over the replicates that have both policies it compares."""
    results = []
    sft_success: dict[str, float] = {}
    for task in tasks:
        pairs = [(_get(r, task, final, Method.RECAP), _get(r, task, 0, Method.RECAP)) for r in replicates]
        pairs = [(recap, sft) for recap, sft in pairs if sft is not None and recap is not None]
        if not pairs:
            continue
        sft_success[task] = sum(sft["success_rate"] for _, sft in pairs) / len(pairs)
        throughput = ratios(
            [recap["throughput_per_hour"] for recap, _ in pairs],
            [sft["throughput_per_hour"] for _, sft in pairs],
        )
        results.append(
            _claim(
                task,
                "throughput RECAP^K / SFT",
                throughput,
                ">=",
                THROUGHPUT_TARGET,
                _paired(outcomes, pairs, "throughput_ratio"),
                floor=0.0,
            )
        )
        failures = ratios(
            [1 - recap["success_rate"] for recap, _ in pairs], [1 - sft["success_rate"] for _, sft in pairs]
        )
        results.append(
            _claim(
                task,
                "failure rate RECAP^K / SFT",
                failures,
                "<=",
                FAILURE_TARGET,
                _paired(outcomes, pairs, "failure_ratio"),
                floor=0.0,
            )
        )
        for baseline in BASELINES:
            pairs = [(_get(r, task, final, Method.RECAP), _get(r, task, final, baseline)) for r in replicates]
            pairs = [(recap, other) for recap, other in pairs if recap is not None and other is not None]
            if not pairs:
                continue
            gaps = [recap["throughput_per_hour"] - other["throughput_per_hour"] for recap, other in pairs]
            claim = f"throughput RECAP^K - {baseline.upper()}^K (per hour)"
            results.append(
                _claim(task, claim, gaps, ">", 0.0, _paired(outcomes, pairs, "throughput_difference"))
            )
            points = [recap["success_rate"] - other["success_rate"] for recap, other in pairs]
            claim = f"success RECAP^K - {baseline.upper()}^K"
            paired = _paired(outcomes, pairs, "success_difference")
            results.append(_claim(task, claim, points, ">", 0.0, paired, floor=-1.0, ceiling=1.0))
    if sft_success:
        hardest = min(sft_success, key=lambda t: (sft_success[t], t))
        for result in results:
            result["hardest"] = result["task"] == hardest
    return results


PROGRESS_COLUMNS = {"success_rate": "success rate", "throughput_per_hour": "successes/hour"}


def progress_images(rows: pl.DataFrame, tasks: Sequence[str]) -> dict[str, bytes]:
    """Per task, success rate and throughput over iterations, one line per method: the mean over
    replicates with its 95% interval (the evaluation's s.e. when there is one replicate). Keys are
    ``{task}_{column}.png`` with the columns of PROGRESS_COLUMNS."""
    images = {}
    single = len(_replicates(rows)) == 1
    for task in tasks:
        part = rows.filter(task=task)
        for column, label in PROGRESS_COLUMNS.items():
            series = {}
            for method in REPORT_ORDER:
                iterations = sorted(set(part.filter(method=method)["iteration"].to_list()))
                if not iterations:
                    continue
                means, errors = [], []
                for iteration in iterations:
                    interval = _over_replicates(part, task, iteration, method, column)
                    means.append(interval.mean)
                    if single:
                        errors.append(_get(part, task, iteration, method)[f"{column}_se"])
                    else:
                        errors.append((interval.high - interval.low) / 2 if interval.defined else 0.0)
                series[method] = (iterations, means, errors)
            bars = "s.e." if single else "95% interval over replicates"
            images[f"{task}_{column}.png"] = progress_per_iteration(
                series, label, f"{task}: {label} ({bars})"
            )
    return images


def task_progress_images(ledger_uri: str, task: str, split: str, study: str) -> dict[str, bytes]:
    """One task's progress so far in one study (newest evaluation of each iteration and method), keyed
    by the ledger column it plots: what the evaluation stage shows after each iteration."""
    rows = newest_evaluations(read_ledger(ledger_uri).filter(task=task, study=study), split)
    images = progress_images(rows, [task])
    return {column: images[f"{task}_{column}.png"] for column in PROGRESS_COLUMNS}


def _final_bars(rows: pl.DataFrame, tasks: Sequence[str], final: int) -> bytes:
    labels = ["SFT = RECAP k=0"] + [f"{m.upper()} (k={final})" for m in REPORT_ORDER]
    fig, ax = plt.subplots(figsize=(4.5 + 1.8 * len(tasks), 4.0))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        method, iteration = (Method.RECAP, 0) if j == 0 else (REPORT_ORDER[j - 1], final)
        heights, errors = [], []
        single = len(_replicates(rows)) == 1
        for task in tasks:
            interval = _over_replicates(rows, task, iteration, method, "throughput_per_hour")
            row = _get(rows, task, iteration, method)
            heights.append(0.0 if math.isnan(interval.mean) else interval.mean)
            if single:
                errors.append(row["throughput_per_hour_se"] if row else 0.0)
            else:
                errors.append((interval.high - interval.low) / 2 if interval.defined else 0.0)
        ax.bar(
            [i + j * width for i in range(len(tasks))], heights, width, yerr=errors, capsize=2, label=label
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], list(tasks), fontsize=8)
    ax.set_ylabel("successes per hour")
    ax.set_title("throughput on held-out seeds")
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def _scaled(interval: Interval, scale: float, digits: int) -> str:
    return Interval(
        interval.mean * scale, interval.low * scale, interval.high * scale, interval.replicates
    ).text(digits)


_SPLIT_TEXT = {
    "test": "test seeds (2,000,000 onwards),\nwhich no setting was chosen on: the study tasks, epochs, "
    "guidance beta = 2 and the threshold targets were\nchosen on validation seeds (1,000,000 onwards).",
    "validation": "validation seeds (1,000,000 onwards),\nthe seeds settings are chosen on: a study "
    "for choosing settings, not a reported result (those come\nfrom test seeds, 2,000,000 onwards).",
}

_TARGET_HEADER = [
    "task",
    "claim",
    "mean",
    "95% t-interval over replicates",
    "paired 95% bootstrap: estimate [interval]",
    "target",
    "verdict (paired)",
    "verdict (t-interval)",
]


def _paired_text(paired: Interval | None) -> str:
    if paired is None:
        return "n/a (no per-episode outcomes)"
    if math.isnan(paired.mean):
        return "undefined"
    return f"{paired.mean:.2f} [{paired.low:.2f}, {paired.high:.2f}]"


def render_report(
    rows: pl.DataFrame,
    tasks: Sequence[str],
    final: int,
    ledger_uri: str,
    ledger_version: int,
    title: str,
    outcomes: pl.DataFrame | None = None,
    outcomes_at: int | None = None,
    split: str = "test",
) -> tuple[str, list[dict]]:
    """The Markdown text of the report (tables only; images are referenced by file name)."""
    replicates = _replicates(rows)
    targets = _targets(replicates, tasks, final, outcomes)
    header = [
        "study",
        "task",
        "method",
        "iteration",
        "episodes",
        "success % ± s.e.",
        "mean duration s ± s.e.",
        "successes/hour ± s.e.",
    ]
    full = [
        [r["study"], r["task"], r["method"], str(r["iteration"]), str(r["episodes"]), *_row_cells(r)]
        for r in rows.iter_rows(named=True)
    ]
    headline_header = [
        "task",
        "policy",
        "success % ± s.e.",
        "mean duration s ± s.e.",
        "successes/hour ± s.e.",
    ]
    headline = []
    for task in tasks:
        for name, method, iteration in (
            ("SFT on demos (RECAP k=0, I=True)", Method.RECAP, 0),
            ("SFT on demos, no indicator", Method.SFT, 0),
            (f"RECAP k={final}", Method.RECAP, final),
            (f"RECAP k={final} at beta=1 (no guidance)", RECAP_UNGUIDED, final),
            (f"SFT k={final}", Method.SFT, final),
            (f"AWR k={final}", Method.AWR, final),
            (f"PPO k={final}", Method.PPO, final),
        ):
            if len(replicates) == 1:
                row = _get(rows, task, iteration, method)
                if row is not None:
                    headline.append([task, name, *_row_cells(row)])
                continue
            success = _over_replicates(rows, task, iteration, method, "success_rate")
            if success.replicates == 0:
                continue
            duration = _over_replicates(rows, task, iteration, method, "mean_duration_s")
            throughput = _over_replicates(rows, task, iteration, method, "throughput_per_hour")
            each = rows.filter(task=task, iteration=iteration, method=method).sort("study")
            headline.append(
                [
                    task,
                    name,
                    _scaled(success.clipped(0.0, 1.0), 100.0, 1),
                    duration.clipped(low=0.0).text(2),
                    throughput.clipped(low=0.0).text(1),
                    ", ".join(f"{100 * v:.0f}" for v in each["success_rate"].to_list()),
                ]
            )
    if len(replicates) > 1:
        headline_header = [
            "task",
            "policy",
            "success % (95% interval over replicates)",
            "mean duration s",
            "successes/hour",
            "success % per replicate",
        ]
    target_lines = [
        [
            t["task"] + (" (hardest)" if t.get("hardest") else ""),
            t["claim"],
            "undefined (zero denominator)" if math.isnan(t["value"]) else f"{t['value']:.2f}",
            t["interval"].text() if not math.isnan(t["value"]) else "undefined",
            _paired_text(t["paired"]),
            t["target"],
            t["verdict"],
            t["t_verdict"],
        ]
        for t in targets
    ]
    episodes_source = (
        f"per-episode outcomes `{outcomes_uri(ledger_uri)}` at Delta version {outcomes_at}"
        if outcomes_at is not None
        else "no per-episode outcomes (evaluations recorded before they were kept)"
    )
    images = "\n\n".join(
        ["![final throughput](final_throughput.png)"]
        + [
            f"![{task} {c}]({task}_{c}.png)"
            for task in tasks
            for c in ("success_rate", "throughput_per_hour")
        ]
    )
    text = f"""# {title}

Studies (one per replicate): {", ".join(sorted(set(rows["study"].to_list())))}.
Every number below is read from the metrics ledger `{ledger_uri}` at Delta version {ledger_version}
(newest evaluation of each task, iteration and method) and comes from {_SPLIT_TEXT[split]}
Success rate and throughput carry standard errors; throughput is successes per hour of robot time (steps
x control period + a reset per episode); duration is the mean duration of successful episodes. The SFT
reference of the targets is iteration 0 (pi_pre finetuned on the task's demonstrations with every
indicator True, Algorithm 1's plain SFT); the unconditioned SFT on the same demos is listed too. The
baselines at k={final} are finetuned from pi_pre on exactly the table versions, steps and advantages
RECAP's pi^{final} used, for the same number of gradient steps with the same rule for the final weights,
and every policy is evaluated on the same held-out seeds.
`recap` is sampled with the preset's guidance beta; `recap_beta1` is the same network at beta = 1.

## RECAP's final iteration against the baselines

{_table(headline_header, headline)}

## The paper's targets

Every policy of a replicate is evaluated on the same {split} seeds, so each claim is judged on the paired
episodes ({episodes_source}): a hierarchical bootstrap (4,000 seeded draws: replicates resampled with
replacement, then each drawn replicate's paired seeds) of the difference or ratio, whose 95% percentile
interval stays within what the quantity can be; a ratio is the ratio of the means over replicates. A
target is met only when the whole paired interval clears it, missed when it is entirely on the wrong
side, and inconclusive otherwise: always with one replicate, since training noise is then unmeasured. The
95% Student-t interval over the replicates' values (a ratio: the mean of per-replicate ratios; clipped at
0) and its verdict are shown beside it, as the report gave them before episodes were kept; without stored
episodes the verdict is the t-interval's. A ratio whose denominator is zero (SFT with no throughput, or no
failures) is undefined.

{_table(_TARGET_HEADER, target_lines)}

## Every evaluation

{_table(header, full)}

## Plots

{images}
"""
    return text, targets


def write_report(
    ledger_uri: str,
    tasks: Sequence[str],
    iterations: int,
    directory: Path,
    title: str = "RECAP evidence study",
    ledger_version: int | None = None,
    studies: Sequence[str] = (DEFAULT_STUDY,),
    split: str = "test",
) -> Report:
    """Read the ledger, write report.md and the PNGs into ``directory``; returns what was written."""
    rows, version = experiment_rows(ledger_uri, tasks, iterations, ledger_version, studies, split)
    final = int(rows.filter(method=Method.RECAP)["iteration"].max() or 0)
    outcomes_at = outcomes_version(ledger_uri)
    outcomes = read_outcomes(ledger_uri, outcomes_at) if outcomes_at is not None else None
    text, targets = render_report(
        rows, tasks, final, ledger_uri, version, title, outcomes, outcomes_at, split
    )
    images = {"final_throughput.png": _final_bars(rows, tasks, final), **progress_images(rows, tasks)}
    directory.mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        (directory / name).write_bytes(png)
    (directory / "report.md").write_text(text)
    rows.drop("evaluated_at", "run_id").write_csv(directory / "ledger_rows.csv")
    return Report(directory, text, images, rows, version, targets, outcomes_at)
