"""xavinit: empirical variance analysis of neural-network initialization (Glorot and Bengio, 2010).

Public API: :func:`get_scheme`, :func:`verify`, :func:`run_init`, :func:`load_result`, and the
config and result dataclasses the commands are built on.
"""

__version__ = "0.1.0"

from xavinit.checks import verify
from xavinit.config import InitConfig
from xavinit.errors import XavinitError
from xavinit.experiments.init import run_init
from xavinit.results import InitCheck, InitResult, load_result
from xavinit.schemes import Scheme, get_scheme

__all__ = [
    "InitCheck",
    "InitConfig",
    "InitResult",
    "Scheme",
    "XavinitError",
    "__version__",
    "get_scheme",
    "load_result",
    "run_init",
    "verify",
]
