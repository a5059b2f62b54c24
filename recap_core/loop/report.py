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
from deltalake import DeltaTable

from recap_core.ledger import newest_evaluations, read_ledger
from recap_core.loop.plots import _png, progress_per_iteration
from recap_core.loop.verdicts import Direction, ratios, t_interval, verdict

METHOD_ORDER = ("recap", "recap_beta1", "sft", "awr", "ppo")
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


def experiment_rows(
    ledger_uri: str, tasks: Sequence[str], iterations: int, version: int | None = None
) -> tuple[pl.DataFrame, int]:
    """The newest test-seed evaluation of each (task, iteration, method), iterations 0..K, at one ledger
    version (validation-seed evaluations are for choosing settings and never reported)."""
    if version is None:
        version = DeltaTable(str(ledger_uri)).version()
    rows = read_ledger(ledger_uri, version=version).filter(
        pl.col("task").is_in(list(tasks)), pl.col("iteration") <= iterations
    )
    if rows.filter(split="test").is_empty():
        raise ValueError(
            f"ledger {ledger_uri} (version {version}) has no test-seed evaluations of {', '.join(tasks)} "
            f"at iterations <= {iterations}: run the experiment first"
        )
    newest = (
        newest_evaluations(rows, "test")
        .with_columns(
            pl.col("method")
            .replace_strict({m: i for i, m in enumerate(METHOD_ORDER)}, default=99)
            .alias("_o")
        )
        .sort("task", "iteration", "_o")
        .drop("_o")
    )
    return newest, version


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


def _claim(task: str, claim: str, values: list[float], direction: Direction, target: float) -> dict:
    interval = t_interval(values)
    return {
        "task": task,
        "claim": claim,
        "value": interval.mean,
        "interval": interval,
        "target": f"{direction} {target:g}",
        "verdict": verdict(interval, direction, target),
    }


def _targets(replicates: Sequence[pl.DataFrame], tasks: Sequence[str], final: int) -> list[dict]:
    """The paper's claims per task, each over the replicates that have both policies it compares."""
    results = []
    sft_success: dict[str, float] = {}
    for task in tasks:
        pairs = [(_get(r, task, 0, "recap"), _get(r, task, final, "recap")) for r in replicates]
        pairs = [(sft, recap) for sft, recap in pairs if sft is not None and recap is not None]
        if not pairs:
            continue
        sft_success[task] = sum(sft["success_rate"] for sft, _ in pairs) / len(pairs)
        throughput = ratios(
            [recap["throughput_per_hour"] for _, recap in pairs],
            [sft["throughput_per_hour"] for sft, _ in pairs],
        )
        results.append(_claim(task, "throughput RECAP^K / SFT", throughput, ">=", THROUGHPUT_TARGET))
        failures = ratios(
            [1 - recap["success_rate"] for _, recap in pairs], [1 - sft["success_rate"] for sft, _ in pairs]
        )
        results.append(_claim(task, "failure rate RECAP^K / SFT", failures, "<=", FAILURE_TARGET))
        for baseline in ("awr", "ppo"):
            gaps = []
            for replicate in replicates:
                recap, other = _get(replicate, task, final, "recap"), _get(replicate, task, final, baseline)
                if recap is not None and other is not None:
                    gaps.append(recap["throughput_per_hour"] - other["throughput_per_hour"])
            if gaps:
                claim = f"throughput RECAP^K - {baseline.upper()}^K (per hour)"
                results.append(_claim(task, claim, gaps, ">", 0.0))
    if sft_success:
        hardest = min(sft_success, key=lambda t: (sft_success[t], t))
        for result in results:
            result["hardest"] = result["task"] == hardest
    return results


def _progress_images(rows: pl.DataFrame, tasks: Sequence[str]) -> dict[str, bytes]:
    """Per task, success rate and throughput over iterations, one line per method with s.e. bars."""
    images = {}
    for task in tasks:
        part = rows.filter(task=task)
        for column, label in (("success_rate", "success rate"), ("throughput_per_hour", "successes/hour")):
            series = {}
            for method in METHOD_ORDER:
                mine = part.filter(method=method).sort("iteration")
                if mine.height:
                    series[method] = (
                        mine["iteration"].to_list(),
                        mine[column].to_list(),
                        mine[f"{column}_se"].to_list(),
                    )
            images[f"{task}_{column}.png"] = progress_per_iteration(series, label, f"{task}: {label}")
    return images


def _final_bars(rows: pl.DataFrame, tasks: Sequence[str], final: int) -> bytes:
    labels = ["SFT = RECAP k=0"] + [f"{m.upper()} (k={final})" for m in METHOD_ORDER]
    fig, ax = plt.subplots(figsize=(4.5 + 1.8 * len(tasks), 4.0))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        method, iteration = ("recap", 0) if j == 0 else (METHOD_ORDER[j - 1], final)
        heights, errors = [], []
        for task in tasks:
            row = _get(rows, task, iteration, method)
            heights.append(row["throughput_per_hour"] if row else 0.0)
            errors.append(row["throughput_per_hour_se"] if row else 0.0)
        ax.bar(
            [i + j * width for i in range(len(tasks))], heights, width, yerr=errors, capsize=2, label=label
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], list(tasks), fontsize=8)
    ax.set_ylabel("successes per hour")
    ax.set_title("throughput on held-out seeds")
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def render_report(
    rows: pl.DataFrame, tasks: Sequence[str], final: int, ledger_uri: str, ledger_version: int, title: str
) -> tuple[str, list[dict]]:
    """The Markdown text of the report (tables only; images are referenced by file name)."""
    targets = _targets([rows], tasks, final)
    header = [
        "task",
        "method",
        "iteration",
        "episodes",
        "success % ± s.e.",
        "mean duration s ± s.e.",
        "successes/hour ± s.e.",
    ]
    full = [
        [r["task"], r["method"], str(r["iteration"]), str(r["episodes"]), *_row_cells(r)]
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
            ("SFT on demos (RECAP k=0, I=True)", "recap", 0),
            ("SFT on demos, no indicator", "sft", 0),
            (f"RECAP k={final}", "recap", final),
            (f"RECAP k={final} at beta=1 (no guidance)", "recap_beta1", final),
            (f"SFT k={final}", "sft", final),
            (f"AWR k={final}", "awr", final),
            (f"PPO k={final}", "ppo", final),
        ):
            row = _get(rows, task, iteration, method)
            if row is not None:
                headline.append([task, name, *_row_cells(row)])
    target_lines = [
        [
            t["task"] + (" (hardest)" if t.get("hardest") else ""),
            t["claim"],
            "undefined (zero denominator)" if math.isnan(t["value"]) else f"{t['value']:.2f}",
            t["interval"].text() if not math.isnan(t["value"]) else "undefined",
            t["target"],
            t["verdict"],
        ]
        for t in targets
    ]
    images = "\n\n".join(
        ["![final throughput](final_throughput.png)"]
        + [
            f"![{task} {c}]({task}_{c}.png)"
            for task in tasks
            for c in ("success_rate", "throughput_per_hour")
        ]
    )
    text = f"""# {title}

Every number below is read from the metrics ledger `{ledger_uri}` at Delta version {ledger_version}
(newest evaluation of each task, iteration and method) and comes from test seeds (2,000,000 onwards),
which no setting was chosen on: the study tasks, epochs, guidance beta = 2 and the threshold targets were
chosen on validation seeds (1,000,000 onwards). Success rate and throughput carry standard errors;
throughput is successes per hour of robot time (steps x control period + a reset per episode);
duration is the mean duration of successful episodes. The SFT reference of the targets is iteration 0
(pi_pre finetuned on the task's demonstrations with every indicator True, Algorithm 1's plain SFT); the
unconditioned SFT on the same demos is listed too. The baselines at k={final} are finetuned from pi_pre on
exactly the table versions, steps and advantages RECAP's pi^{final} used, for the same number of gradient
steps with the same rule for the final weights, and every policy is evaluated on the same held-out seeds.
`recap` is sampled with the preset's guidance beta; `recap_beta1` is the same network at beta = 1.

## RECAP's final iteration against the baselines

{_table(headline_header, headline)}

## The paper's targets

A target is met only when the 95% t-interval over replicates clears it, missed when the interval is
entirely on the wrong side, and inconclusive otherwise: always with one replicate, since training noise
is then unmeasured. A ratio whose denominator is zero (SFT with no throughput, or no failures) is undefined.

{_table(["task", "claim", "mean", "95% interval over replicates", "target", "verdict"], target_lines)}

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
) -> Report:
    """Read the ledger, write report.md and the PNGs into ``directory``; returns what was written."""
    rows, version = experiment_rows(ledger_uri, tasks, iterations, ledger_version)
    final = int(rows.filter(method="recap")["iteration"].max() or 0)
    text, targets = render_report(rows, tasks, final, ledger_uri, version, title)
    images = {"final_throughput.png": _final_bars(rows, tasks, final), **_progress_images(rows, tasks)}
    directory.mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        (directory / name).write_bytes(png)
    (directory / "report.md").write_text(text)
    rows.drop("evaluated_at", "run_id").write_csv(directory / "ledger_rows.csv")
    return Report(directory, text, images, rows, version, targets)
