"""Choosing each model's learning rate, as the paper chose its rates (section 2.3): the lowest
mean validation error over the seeds; at that rate the test error over the seeds is the model's
cell of Table 1.
"""

from __future__ import annotations

import statistics

from xavinit.results import SweepEntry, SweepRun


def choose_rate(trials: list[tuple[float, float | None]]) -> tuple[float, float] | None:
    """The learning rate with the lowest mean validation error over its seeds, and that mean.

    ``trials``: ``(lr, validation error when the rate was chosen)`` of every run of one model,
    None for a run that did not get there (diverged or failed first). A rate qualifies when all
    its runs got there; ties go to the rate listed first. None when no rate qualifies.
    """
    by_rate: dict[float, list[float | None]] = {}
    for lr, error in trials:
        by_rate.setdefault(lr, []).append(error)
    means = {
        lr: statistics.fmean(e for e in errors if e is not None)
        for lr, errors in by_rate.items()
        if all(e is not None for e in errors)
    }
    if not means:
        return None
    best = min(means, key=lambda lr: means[lr])
    return best, means[best]


def sweep_table(runs: list[SweepRun], selected_at: int) -> list[SweepEntry]:
    """Table 1 of the runs: per model the chosen rate, and the test error over its seeds.

    The test error's ``std`` is the sample standard deviation over seeds (None for one seed).
    """
    models: dict[tuple[str, str, str], list[SweepRun]] = {}
    for run in runs:
        models.setdefault((run.dataset, run.activation, run.scheme), []).append(run)
    table: list[SweepEntry] = []
    for (dataset, activation, scheme), mine in models.items():
        choice = choose_rate([(r.lr or 0.0, r.selection_valid_error) for r in mine])
        entry: SweepEntry = {
            "dataset": dataset,
            "activation": activation,
            "scheme": scheme,
            "lr": None,
            "validation_error": None,
            "test_error_mean": None,
            "test_error_std": None,
            "seeds": 0,
            "updates": 0,
            "selected_at": selected_at,
        }
        if choice is not None:
            lr, valid = choice
            chosen = [r for r in mine if r.lr == lr and r.status == "finished"]
            errors = [r.final_test_error for r in chosen if r.final_test_error is not None]
            entry["lr"] = lr
            entry["validation_error"] = valid
            entry["test_error_mean"] = statistics.fmean(errors) if errors else None
            entry["test_error_std"] = statistics.stdev(errors) if len(errors) > 1 else None
            entry["seeds"] = len(errors)
            entry["updates"] = min((r.updates for r in chosen), default=0)
        table.append(entry)
    return table
