"""Spec strings ``name:key=value,key=value`` and the "did you mean" hint of every error.

Schemes (``he-normal:mode=fan_out,slope=0.2``) and activations (``leaky-relu:slope=0.2``) are
named by the same syntax: a name, then optionally ``:`` and comma-separated ``key=value`` items.
:func:`split_spec` owns that syntax; each caller validates the keys and values it knows and words
its own errors. :func:`suggest` is the one wording of the closest-name hint.

Example:
    >>> name, params = split_spec(" he-normal : mode=fan_out, slope ")
    >>> name, [(p.key, p.value) for p in params]
    ('he-normal', [('mode', 'fan_out'), ('slope', None)])
    >>> "unknown scheme 'normalised'" + suggest("normalised", ["normalized", "standard"])
    "unknown scheme 'normalised' (did you mean 'normalized'?)"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["Param", "split_spec", "suggest"]


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the choice closest to ``word``, or ``''`` if none is.

    Closeness is ``difflib.get_close_matches`` with its default cutoff (a similarity ratio of
    0.6). The hint goes right after the offending word: ``unknown key 'trails' (did you mean
    'trials'?); allowed keys: ...``.
    """
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Param(NamedTuple):
    """One ``key=value`` item of a spec, as written (stripped of surrounding spaces).

    Attributes:
        text: the whole item, e.g. ``"mode = fan_out"`` (``""`` for an empty item).
        key: the part before the first ``=`` (the whole item when there is no ``=``).
        value: the part after the first ``=``; ``None`` when the item has no ``=``.
    """

    text: str
    key: str
    value: str | None


def split_spec(spec: str) -> tuple[str, list[Param]]:
    """Split ``name[:key=value[,key=value...]]`` into the name and its items, nothing checked.

    The name is everything before the first ``:``; the rest is split at every ``,`` and each
    item at its first ``=``. Names, keys and values are stripped but not otherwise normalised.
    A blank parameter part (``"tanh"``, ``"tanh:"``) gives no items; otherwise every item is
    returned, empty ones included, so that the caller decides whether ``a=1,`` is an error.
    """
    name, _, rest = spec.partition(":")
    if not rest.strip():
        return name.strip(), []
    params = []
    for item in rest.split(","):
        key, sep, value = item.partition("=")
        params.append(Param(item.strip(), key.strip(), value.strip() if sep else None))
    return name.strip(), params
