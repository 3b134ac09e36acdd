"""The table renderers on typed results: what they show comes from the result's fields (never
from a registry), older results without a field still render, and values stay as they were
shown when renderers read documents (non-finite numbers as saved)."""

from __future__ import annotations

import dataclasses
import io
import math

from rich.console import Console

from xavinit.config import InitConfig, SchemesConfig
from xavinit.experiments.init import run_init
from xavinit.experiments.schemes import run_schemes
from xavinit.loading import result_from_dict
from xavinit.render import print_table
from xavinit.render.format import decimals, fixed, layer_names, num, pct, sci, signed


def _table(result) -> str:
    out = io.StringIO()
    print_table(result, Console(file=out, width=200, markup=False, emoji=False, color_system=None))
    return out.getvalue()


def test_the_init_table_describes_each_scheme_from_the_result():
    result = run_init(InitConfig.from_mapping({"layers": [8, 4], "schemes": ["standard"]}))
    assert result.scheme_descriptions == {
        "standard": "U[-1/sqrt(fan_in), 1/sqrt(fan_in)], Var = 1/(3 fan_in)  "
        "(PyTorch's nn.Linear default)"
    }
    assert "  standard: U[-1/sqrt(fan_in), 1/sqrt(fan_in)], Var = 1/(3 fan_in)" in _table(result)
    own = dataclasses.replace(result, scheme_descriptions={"standard": "words of the result"})
    assert "  standard: words of the result\n" in _table(own)


def test_init_records_each_schemes_canonical_name():
    """DESIGN.md: xavier-uniform and glorot-uniform are aliases of normalized."""
    config = {"layers": [6, 4], "schemes": ["xavier-uniform", "he-normal:mode=fan_out"]}
    result = run_init(InitConfig.from_mapping(config))
    names = {"xavier-uniform": "normalized", "he-normal:mode=fan_out": "he-normal"}
    assert result.scheme_names == names


def test_an_init_result_saved_before_the_descriptions_renders_without_them():
    document = run_init(InitConfig.from_mapping({"layers": [8, 4, 3]})).to_dict()
    del document["scheme_descriptions"]
    old = result_from_dict(document)
    assert old.scheme_descriptions == {}
    text = _table(old)
    assert "xavinit init: 8-4-3, seed 0" in text
    assert "normalized: " not in text and "n_in·Var = 1 keeps" in text


def test_the_schemes_listing_says_what_gain_names_take_from_the_result():
    listing = run_schemes(SchemesConfig.from_mapping({}))
    assert listing.gain_names is not None
    assert listing.gain_names["torch"] == [  # the registry's order
        "sigmoid",
        "tanh",
        "relu",
        "leaky-relu",
        "linear",
        "selu",
    ]
    text = _table(listing)
    assert (
        "gain=NAME (e.g. normalized:gain=silu) takes PyTorch's calculate_gain for sigmoid, " in text
    )
    one = run_schemes(SchemesConfig.from_mapping({"spec": "he-normal"}))
    assert one.gain_names is None and "gain=NAME" not in _table(one)
    document = listing.to_dict()
    del document["gain_names"]  # saved before the field existed
    old = result_from_dict(document)
    assert old.gain_names is None
    assert "gain=NAME" not in _table(old) and "he-normal" in _table(old)


def test_a_schemes_result_whose_config_is_empty_renders():
    """Found by hypothesis (test_fuzz): the fans in the title came from ``config['fan_in']``;
    they are the rows' own fans now, and an empty config is a valid one (every default)."""
    result = run_schemes(SchemesConfig.from_mapping({"fan_in": 4, "fan_out": 3}))
    document = {**result.to_dict(), "config": {}}
    text = _table(result_from_dict(document))
    assert "xavinit schemes (fan_in=4, fan_out=3)" in text
    standard = next(line for line in text.splitlines() if line.startswith("│ standard "))
    assert "0.08333" in standard  # 1/(3 fan_in) = 1/12, by hand
    assert layer_names(result) == ""  # no layers in a schemes config


def test_non_finite_numbers_render_as_they_are_saved():
    """A typed result holds non-finite floats (documents held the strings "inf", "nan")."""
    assert decimals(math.inf, "+.3f") == "inf"
    assert decimals(-math.inf, ".4f") == "-inf"
    assert sci(math.nan) == "nan" and sci(-math.inf) == "-inf"
    assert fixed(math.inf) == "inf" and fixed(math.nan) == "nan"
    assert signed(math.inf) == "inf" and signed(0.5) == "+0.5000"
    assert pct(math.inf) == "-" and pct(0.0015) == "+0.15%"
    assert num(math.inf) == "inf" and num(None) == "-"
