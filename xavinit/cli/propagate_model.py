"""``xavinit propagate --model``: the options and the dispatch to the model experiment.

``propagate`` keeps its own options; the model-only ones (``--model``, ``--model-arg``,
``--input-shape``, ``--depth-of``, ``--max-drift``) come from
:class:`xavinit.config.PropagateModelConfig` and join the command line. When ``model`` is given
(as an option or in the config file) the run is ``propagate --model``; the MLP-only options are
then refused by name, as the model-only ones are without ``--model``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from xavinit.errors import XavinitError

SHARED = ("seed", "batch", "input")
"""Options both forms of propagate take."""


def _keys(config_type: Any) -> set[str]:
    return set(config_type.accepted_keys())


def model_options() -> list[inspect.Parameter]:
    """The typer parameters of the model-only options."""
    from xavinit.cli.options import option_parameters
    from xavinit.config import PropagateConfig, PropagateModelConfig

    own = _keys(PropagateConfig)
    return [p for p in option_parameters(PropagateModelConfig) if p.name not in own]


def build(mapping: dict[str, Any], origin: Callable[[str], str]) -> Any:
    """The config of ``propagate`` or of ``propagate --model``, by whether a model is named."""
    from xavinit.config import PropagateConfig, PropagateModelConfig

    model_keys = _keys(PropagateModelConfig) - set(SHARED)
    mlp_keys = _keys(PropagateConfig) - set(SHARED)
    keys = {str(k).replace("-", "_") for k in mapping}
    if "model" in keys:
        wrong = sorted(keys & (mlp_keys - model_keys))
        if wrong:
            flag = PropagateConfig.option_key(PropagateConfig.accepted_keys()[wrong[0]])
            raise XavinitError(f"{origin(wrong[0])}: the --{flag.replace('_', '-')} option "
                               "applies to propagate's own networks, not with --model")  # fmt: skip
        return PropagateModelConfig.from_mapping(mapping, origin)
    wrong = sorted(keys & (model_keys - mlp_keys))
    if wrong:
        raise XavinitError(f"{origin(wrong[0])}: applies only with --model")
    return PropagateConfig.from_mapping(mapping, origin)


def run() -> Callable[..., Any]:
    """The experiment for the built config (imported when the command runs)."""

    def dispatch(config: Any, progress: Any) -> Any:
        if type(config).__name__ == "PropagateModelConfig":
            from xavinit.experiments.propagate_model import run_propagate_model

            return run_propagate_model(config, progress)
        from xavinit.experiments.propagate import run_propagate

        return run_propagate(config, progress)

    return dispatch


def prepare(values: dict[str, Any], extras: dict[str, Any]) -> tuple[Any, Any]:
    """Put the model-only options back among the command line's values (so messages name
    them ``--max-drift``) and build and run through :func:`build` and :func:`run`."""
    for key, value in extras.items():
        values[key] = tuple(value) if isinstance(value, list) else value
    return build, run
