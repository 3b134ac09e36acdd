"""The spec syntax ``name:key=value,...`` and the one wording of "did you mean"."""

from __future__ import annotations

from xavinit.specs import Param, split_spec, suggest


def test_suggest_names_the_closest_choice_or_nothing():
    assert suggest("normalised", ["normalized", "standard"]) == " (did you mean 'normalized'?)"
    assert suggest("zzzz", ["normalized", "standard"]) == ""
    assert suggest("gian", ("gain", "mode")) == " (did you mean 'gain'?)"


def test_split_spec_keeps_items_as_written():
    assert split_spec("tanh") == ("tanh", [])
    assert split_spec(" tanh : ") == ("tanh", [])
    assert split_spec("He-Normal: Mode = FAN-OUT , slope") == (
        "He-Normal",
        [Param("Mode = FAN-OUT", "Mode", "FAN-OUT"), Param("slope", "slope", None)],
    )
    assert split_spec("a:k=,=v,x=1=2,") == (
        "a",
        [
            Param("k=", "k", ""),
            Param("=v", "", "v"),
            Param("x=1=2", "x", "1=2"),
            Param("", "", None),
        ],
    )
