"""SPECs and budgets of `swapdeck compare`, read through the family registry."""

from __future__ import annotations

import pytest

from engine.compare.spec import model_name, parse_budget, parse_spec, parse_specs
from engine.errors import BadInputError


def test_presets_choices_and_options_are_read_from_the_registry():
    tiny, liae, big, old = parse_specs(["tiny,hd:liae", "hd:size=160", "model:mine"])
    assert (tiny.family, tiny.preset, tiny.options) == ("autoencoder", "tiny", {})
    # `liae` is a value only the layout option takes: the SPEC need not name it.
    assert (liae.preset, liae.options, liae.slug) == ("hd", {"layout": "liae"}, "hd-liae")
    assert big.options == {"size": "160"}
    assert (old.existing, old.preset) == ("mine", None)
    assert model_name("cmp", liae) == "cmp-hd-liae"
    assert model_name("cmp", old) == "mine"


def test_a_family_name_means_its_first_preset():
    spec = parse_spec("autoencoder")
    assert (spec.family, spec.preset) == ("autoencoder", "tiny")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("nosuch", "unknown model 'nosuch'"),
        ("hd:pixelart", "no option of hd takes 'pixelart'"),
        ("tiny,tiny", "the same model twice"),
        ("hd:layout=df:layout=liae", "sets layout twice"),
        ("model:../x", "not a plain name"),
        (" , ", "names no model"),
    ],
)
def test_a_bad_spec_is_one_line(text, words):
    with pytest.raises(BadInputError) as caught:
        parse_specs([text])
    assert words in caught.value.one_line()
    assert "\n" not in caught.value.one_line()


@pytest.mark.parametrize(
    ("text", "kind", "amount"),
    [
        ("20m", "seconds", 1200),
        ("90s", "seconds", 90),
        ("1.5h", "seconds", 5400),
        ("200k", "examples", 200_000),
        ("5000", "examples", 5000),
        ("64 examples", "examples", 64),
    ],
)
def test_budgets(text, kind, amount):
    budget = parse_budget(text)
    assert (budget.kind, budget.amount) == (kind, amount)


def test_examples_budget_in_steps_rounds_up():
    assert parse_budget("100").steps(32) == 4
    assert parse_budget("96").steps(32) == 3


@pytest.mark.parametrize("text", ["", "twenty", "0m", "1M", "-5", "3d"])
def test_a_bad_budget_is_refused(text):
    with pytest.raises(BadInputError, match="cannot read the budget"):
        parse_budget(text)


def test_compares_a_and_b_fill_every_faceset_option_a_family_has():
    from engine.compare.spec import faceset_options
    from engine.train.registry import get_family

    assert faceset_options(get_family("autoencoder"), "x", "y") == {
        "faceset_a": "x",
        "faceset_b": "y",
    }
    # fast-swap needs only B; its optional faceset_a still names A, so score knows the source.
    assert faceset_options(get_family("fast-swap"), "x", "y") == {
        "faceset_b": "y",
        "faceset_a": "x",
    }
