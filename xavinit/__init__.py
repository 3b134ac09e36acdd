"""xavinit: empirical variance analysis of neural-network initialization (Glorot and Bengio, 2010).

Public API: :func:`get_scheme`, :func:`verify`, one function per experiment (:func:`run_init`,
:func:`run_propagate`, :func:`run_train`, :func:`run_report`) taking its config dataclass and
returning a result dataclass with ``to_dict()``, and :func:`load_result` to read a saved one.
"""

from xavinit._version import __version__
from xavinit.checks import verify
from xavinit.config import InitConfig, PropagateConfig, ReportConfig, TrainConfig
from xavinit.errors import XavinitError
from xavinit.experiments.init import run_init
from xavinit.experiments.propagate import run_propagate
from xavinit.experiments.report import run_report
from xavinit.experiments.train import run_train
from xavinit.results import (
    InitCheck,
    InitResult,
    PropagateResult,
    TrainResult,
    load_result,
)
from xavinit.schemes import Scheme, get_scheme

__all__ = [
    "InitCheck",
    "InitConfig",
    "InitResult",
    "PropagateConfig",
    "PropagateResult",
    "ReportConfig",
    "Scheme",
    "TrainConfig",
    "TrainResult",
    "XavinitError",
    "__version__",
    "get_scheme",
    "load_result",
    "run_init",
    "run_propagate",
    "run_report",
    "run_train",
    "verify",
]
