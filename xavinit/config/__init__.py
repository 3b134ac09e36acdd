"""Every command's configuration, each option declared once.

- :mod:`~xavinit.config.base`: :class:`Opt` (what the command line and files know of a field)
  and the :class:`Config` base (validation, messages naming where a value came from);
- :mod:`~xavinit.config.fields`: validators, field types, help texts and the options several
  commands share;
- :mod:`~xavinit.config.models`: one model per command (``CONFIG_TYPES``);
- :mod:`~xavinit.config.files`: YAML config files, merged under the command line.

``from xavinit.config import TrainConfig`` is the public path to every model.
"""

from __future__ import annotations

from xavinit.config.base import Config, Opt, Origin
from xavinit.config.fields import PAPER_LAYERS
from xavinit.config.files import load_yaml, merge_options
from xavinit.config.models import (
    CONFIG_TYPES,
    CheckConfig,
    GainConfig,
    InitConfig,
    PropagateConfig,
    PropagateModelConfig,
    ReportConfig,
    SchemesConfig,
    SweepConfig,
    TrainConfig,
    config_of,
    config_type,
)

__all__ = [
    "CONFIG_TYPES",
    "PAPER_LAYERS",
    "CheckConfig",
    "Config",
    "GainConfig",
    "InitConfig",
    "Opt",
    "Origin",
    "PropagateConfig",
    "PropagateModelConfig",
    "ReportConfig",
    "SchemesConfig",
    "SweepConfig",
    "TrainConfig",
    "config_of",
    "config_type",
    "load_yaml",
    "merge_options",
]
