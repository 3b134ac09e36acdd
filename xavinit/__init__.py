"""xavinit: empirical variance analysis of neural-network initialization (Glorot and Bengio, 2010).

Public API: :func:`get_scheme`, :func:`verify`, :func:`check_weights` (a checkpoint or a
state dict, tensor by tensor), one function per experiment (:func:`run_init`,
:func:`run_propagate`, :func:`run_propagate_model`, :func:`run_train`, :func:`run_report`, :func:`run_schemes`,
:func:`run_check`, :func:`run_sweep`, :func:`run_gain`) taking its config model and returning a
result dataclass with ``to_dict()``, and :func:`load_result` to read
a saved one. Names are imported on first use, so ``import xavinit`` (and the command line's
``--help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xavinit._version import __version__

_EXPORTS = {
    "InitCheck": "xavinit.results",
    "InitResult": "xavinit.results",
    "PropagateResult": "xavinit.results",
    "TrainResult": "xavinit.results",
    "ReportResult": "xavinit.results",
    "SchemesResult": "xavinit.results",
    "GainResult": "xavinit.results",
    "InitConfig": "xavinit.config",
    "PropagateConfig": "xavinit.config",
    "TrainConfig": "xavinit.config",
    "ReportConfig": "xavinit.config",
    "SchemesConfig": "xavinit.config",
    "SweepConfig": "xavinit.config",
    "SweepResult": "xavinit.results",
    "GainConfig": "xavinit.config",
    "XavinitError": "xavinit.errors",
    "Scheme": "xavinit.core.schemes",
    "get_scheme": "xavinit.core.schemes",
    "verify": "xavinit.core.verification",
    "load_result": "xavinit.loading",
    "run_init": "xavinit.experiments.init",
    "run_propagate": "xavinit.experiments.propagate",
    "run_propagate_model": "xavinit.experiments.propagate_model",
    "PropagateModelConfig": "xavinit.config",
    "run_train": "xavinit.experiments.train",
    "run_report": "xavinit.experiments.report",
    "run_schemes": "xavinit.experiments.schemes",
    "CheckConfig": "xavinit.config",
    "CheckResult": "xavinit.results",
    "TensorCheck": "xavinit.results",
    "run_check": "xavinit.experiments.check",
    "check_weights": "xavinit.experiments.check",
    "run_sweep": "xavinit.experiments.sweep",
    "run_gain": "xavinit.experiments.gain",
}

__all__ = [
    "CheckConfig",
    "CheckResult",
    "GainConfig",
    "GainResult",
    "InitCheck",
    "InitConfig",
    "InitResult",
    "PropagateConfig",
    "PropagateModelConfig",
    "PropagateResult",
    "ReportConfig",
    "ReportResult",
    "Scheme",
    "SchemesConfig",
    "SchemesResult",
    "SweepConfig",
    "SweepResult",
    "TensorCheck",
    "TrainConfig",
    "TrainResult",
    "XavinitError",
    "__version__",
    "check_weights",
    "get_scheme",
    "load_result",
    "run_check",
    "run_gain",
    "run_init",
    "run_propagate",
    "run_propagate_model",
    "run_report",
    "run_schemes",
    "run_sweep",
    "run_train",
    "verify",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'xavinit' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from xavinit.config import (
        CheckConfig,
        GainConfig,
        InitConfig,
        PropagateConfig,
        PropagateModelConfig,
        ReportConfig,
        SchemesConfig,
        SweepConfig,
        TrainConfig,
    )
    from xavinit.core.schemes import Scheme, get_scheme
    from xavinit.core.verification import verify
    from xavinit.errors import XavinitError
    from xavinit.experiments.check import check_weights, run_check
    from xavinit.experiments.gain import run_gain
    from xavinit.experiments.init import run_init
    from xavinit.experiments.propagate import run_propagate
    from xavinit.experiments.propagate_model import run_propagate_model
    from xavinit.experiments.report import run_report
    from xavinit.experiments.schemes import run_schemes
    from xavinit.experiments.sweep import run_sweep
    from xavinit.experiments.train import run_train
    from xavinit.loading import load_result
    from xavinit.results import (
        CheckResult,
        GainResult,
        InitCheck,
        InitResult,
        PropagateResult,
        ReportResult,
        SchemesResult,
        SweepResult,
        TensorCheck,
        TrainResult,
    )
