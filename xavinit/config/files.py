"""Config files: a YAML mapping of option names to values, merged under the options given on
the command line (they win)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xavinit.config.base import Origin, flag
from xavinit.config.fields import SHAPE_KEYS
from xavinit.errors import XavinitError
from xavinit.serialize import parse_yaml_text, read_text


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of option names to values (``yaml.safe_load`` only).

    Raises:
        XavinitError: missing or unreadable file, malformed YAML, or a top level that is not a
        mapping.
    """
    text = read_text(str(path), "config file")
    data = parse_yaml_text(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise XavinitError(
            f"{path}: the top level must be a mapping of option names to values, "
            f"got {type(data).__name__}"
        )
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def merge_options(
    file_values: Mapping[str, Any], cli_values: Mapping[str, Any], file_label: str
) -> tuple[dict[str, Any], Origin]:
    """Merge config-file values with explicitly given options (options win).

    Returns the merged mapping and a function naming where a key came from, for messages:
    ``--trials`` for an option, ``run.yaml: trials`` for a file key.
    """
    merged = dict(file_values)
    given = {k: v for k, v in cli_values.items() if v is not None and v != ()}
    if "layers" in given:
        for key in SHAPE_KEYS:
            merged.pop(key, None)
    if any(k in given for k in SHAPE_KEYS):
        merged.pop("layers", None)
    merged.update(given)

    def origin(key: str) -> str:
        if key in given:
            return flag(key)
        return f"{file_label}: {key}"

    return merged, origin
