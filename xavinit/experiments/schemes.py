"""``xavinit schemes``: every scheme with its aliases, distribution and variance formula."""

from __future__ import annotations

from typing import Any, cast

from xavinit.config import SchemesConfig
from xavinit.core.activations import ACTIVATION_ALIASES, ACTIVATION_NAMES, TORCH_GAIN_NAMES
from xavinit.core.schemes import PRESETS, Scheme, get_scheme
from xavinit.experiments import Progress
from xavinit.results import GainNames, SchemeRow, SchemesResult


def gain_names() -> GainNames:
    """What ``gain=NAME`` accepts in a scheme spec: PyTorch's ``calculate_gain`` names, the
    activations whose gain is the exact forward gain ``1/sqrt(E[f(z)^2])``, and the aliases."""
    return {
        "torch": list(TORCH_GAIN_NAMES),
        "exact": [name for name in ACTIVATION_NAMES if name not in TORCH_GAIN_NAMES],
        "aliases": list(ACTIVATION_ALIASES),
    }


def _numbers(scheme: Scheme, fan_in: int | None, fan_out: int | None) -> dict[str, Any]:
    if fan_in is None or fan_out is None:
        return {}
    return {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "variance": scheme.variance(fan_in, fan_out),
        "bound": scheme.bound(fan_in, fan_out),
        "std": scheme.std(fan_in, fan_out),
    }


def run_schemes(config: SchemesConfig, progress: Progress | None = None) -> SchemesResult:
    """One row per preset (or the one ``config.spec``), with numbers when both fans are given;
    the listing of every preset also says which activation names ``gain=NAME`` takes."""
    rows: list[dict[str, Any]] = []
    for preset in PRESETS.values():
        scheme = get_scheme(preset.name)
        row: dict[str, Any] = {
            "name": preset.name,
            "aliases": list(preset.aliases),
            "distribution": preset.distribution,
            "formula": preset.formula,
            "parameters": list(preset.params),
            "known_as": preset.known_as,
            "source": preset.source,
        }
        row.update(_numbers(scheme, config.fan_in, config.fan_out))
        rows.append(row)
    if config.spec is not None:
        scheme = get_scheme(config.spec)
        (row,) = (r for r in rows if r["name"] == scheme.name)
        row.update(
            spec=scheme.spec,
            formula=scheme.formula(),
            distribution=scheme.distribution,
            **_numbers(scheme, config.fan_in, config.fan_out),
        )
        rows = [row]
    return SchemesResult(
        config=config.to_dict(),
        schemes=cast(list[SchemeRow], rows),
        gain_names=gain_names() if config.spec is None else None,
    )
