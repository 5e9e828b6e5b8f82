"""The cost math: the seed's table reproduced, dated presets, clear errors."""

from pathlib import Path

import pytest

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.simulate.cost import cost_table, load_prices, parse_mix, preset_names


def test_seed_preset_reproduces_the_seed_table() -> None:
    preset = load_prices("seed")
    d = preset.defaults
    table = cost_table(preset, d.requests_per_day, [m / 100 for m in d.mix], d.input_tokens, d.output_tokens)
    assert table["baseline"]["usd_per_day"] == pytest.approx(4500)
    assert table["baseline"]["usd_per_month"] == pytest.approx(135_000)
    assert table["routed"]["usd_per_day"] == pytest.approx(885)
    assert table["routed"]["usd_per_month"] == pytest.approx(26_550)
    assert table["savings"] == pytest.approx(0.80, abs=0.005)


def test_costs_scale_with_volume_tokens_and_mix() -> None:
    preset = load_prices("list-2026-11")
    base = cost_table(preset, 1000, [0.7, 0.2, 0.1], 500, 200)
    assert cost_table(preset, 2000, [0.7, 0.2, 0.1], 500, 200)["routed"]["usd_per_day"] == pytest.approx(
        2 * base["routed"]["usd_per_day"])
    all_local = cost_table(preset, 1000, [1.0, 0.0, 0.0], 500, 200)
    assert all_local["routed"]["usd_per_day"] == 0 and all_local["savings"] == 1
    frontier = preset.tiers[-1]
    assert base["baseline"]["usd_per_day"] == pytest.approx(1000 * (500 * frontier.input + 200 * frontier.output) / 1e6)


def test_every_preset_is_dated_and_sourced() -> None:
    for name in preset_names():
        preset = load_prices(name)
        assert preset.as_of and preset.source


@pytest.mark.parametrize("mix, message", [
    ("70/20", "gives 2 shares"),
    ("70/20/20", "sum to 110"),
    ("a/b/c", "not numbers"),
    ("120/-10/-10", "non-negative"),
])
def test_bad_mixes(mix: str, message: str) -> None:
    with pytest.raises(SlmkitError, match=message):
        parse_mix(mix, 3)


def test_price_files_and_unknown_presets(tmp_path: Path) -> None:
    own = tmp_path / "prices.yaml"
    own.write_text("as_of: '2026-11-01'\nsource: our contract\ntiers:\n  - {name: local, input: 0, output: 0}\n"
                   "  - {name: cloud, input: 2, output: 8}\n")
    table = cost_table(load_prices(str(own)), 100, parse_mix("50/50", 2), 1000, 100)
    assert table["routed"]["usd_per_day"] == pytest.approx(50 * (2000 + 800) / 1e6)
    with pytest.raises(SlmkitError, match="Unknown price preset"):
        load_prices("gpt-99")
    broken = tmp_path / "broken.yaml"
    broken.write_text("as_of: x\nsource: y\ntiers:\n  - {name: a, input: -1, output: 0}\n")
    with pytest.raises(SlmkitError, match="tiers.0.input"):
        load_prices(str(broken))
