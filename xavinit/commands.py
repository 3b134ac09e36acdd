"""Every command of xavinit, in one registry (a leaf: standard library only).

The command line lists them in this order and imports ``xavinit.cli.NAME`` for each; the
renderers, ``report``, the config models and the result types are keyed by the same names.
A new command is one :class:`Command` line here (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One command: its name, its config model and result type (names in ``xavinit.config``
    and ``xavinit.results``; ``None`` for ``data``, which writes files, not a result), and
    where ``report`` places its results (the order a study runs in: sample, propagate, train,
    sweep, then the tools)."""

    name: str
    config: str | None
    result: str | None
    report_rank: int | None


COMMANDS: tuple[Command, ...] = (
    Command("init", "InitConfig", "InitResult", 0),
    Command("check", "CheckConfig", "CheckResult", 6),
    Command("propagate", "PropagateConfig", "PropagateResult", 1),
    Command("gain", "GainConfig", "GainResult", 4),
    Command("train", "TrainConfig", "TrainResult", 2),
    Command("sweep", "SweepConfig", "SweepResult", 3),
    Command("report", "ReportConfig", "ReportResult", 7),
    Command("schemes", "SchemesConfig", "SchemesResult", 5),
    Command("data", None, None, None),
)
"""Every command, in the order ``xavinit --help`` lists them."""

COMMAND_NAMES: tuple[str, ...] = tuple(c.name for c in COMMANDS)
RESULT_COMMANDS: tuple[Command, ...] = tuple(c for c in COMMANDS if c.result is not None)
"""The commands that produce a result document (everything but ``data``)."""
REPORT_ORDER: tuple[str, ...] = tuple(
    c.name for c in sorted(RESULT_COMMANDS, key=lambda c: c.report_rank or 0)
)
"""The order in which ``report`` shows documents, by their ``command``."""
