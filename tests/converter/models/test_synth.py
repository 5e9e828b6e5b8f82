"""Real-shape random checkpoints: the recipe's shapes, the hub's layout, peaked outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from slmkit.converter.models import synth
from slmkit.converter.models.checkpoint import Checkpoint, read_safetensors_header
from slmkit.runtime.models.recipe import all_recipes
from tests.conftest import run_cli


def shrink_text(**changes):
    def transform(config: dict) -> None:
        synth.text_config(config).update(changes)
    return transform


def shrink_gemma_4b(config: dict) -> None:
    synth.text_config(config).update(num_hidden_layers=2, hidden_size=64, intermediate_size=128, head_dim=16,
                                     num_attention_heads=4, num_key_value_heads=2, vocab_size=512)
    config["vision_config"].update(num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                                   image_size=28, patch_size=14)


def test_every_recipe_has_its_config_and_matches_its_parameter_count() -> None:
    for name, recipe in all_recipes().items():
        planned = synth.plan(synth.recipe_config(recipe))
        text = sum(torch.Size(t.shape).numel() for t in planned if not t.name.startswith(("vision_tower", "multi_modal")))
        assert text / 1e9 == pytest.approx(recipe.params_billion, rel=0.005), name
        config = synth.text_config(synth.recipe_config(recipe))
        assert config["num_hidden_layers"] == recipe.kv.layers and config["num_key_value_heads"] == recipe.kv.kv_heads


def test_multimodal_checkpoint_in_the_hub_layout(fixture_dir, tmp_path: Path) -> None:
    """Gemma 3 4B's layout, sharded with an index; the SigLIP tower is in the files, and the
    checkpoint as slmkit reads it sees only the text decoder."""
    out = synth.synthesize(all_recipes()["gemma-3-4b"], tmp_path / "g4b", config_transform=shrink_gemma_4b,
                           tokenizer_from=fixture_dir("gemma3"), shard_bytes=64 * 1024)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and files == sorted(p.name for p in out.glob("*.safetensors"))
    names = set(index["weight_map"])
    assert "language_model.model.layers.1.mlp.down_proj.weight" in names
    assert any(n.startswith("vision_tower.vision_model.encoder.layers.0.") for n in names)
    assert "multi_modal_projector.mm_input_projection_weight" in names
    assert not any("lm_head" in n for n in names), "tied: stored once"
    for file in files:
        header = read_safetensors_header(out / file)
        assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}
    ckpt = Checkpoint.open(out, {"kind": "local"})
    assert ckpt.is_multimodal and all(ref.name.startswith("model.") for ref in ckpt.tensors())
    config = json.loads((out / "config.json").read_text())
    donor = json.loads((fixture_dir("gemma3") / "config.json").read_text())
    assert config["text_config"]["eos_token_id"] == donor["eos_token_id"], "special ids of the lent tokenizer"
    assert (out / "tokenizer.json").is_file() and (out / "slmkit-synth.json").is_file()


def test_norm_weights_follow_the_architecture(fixture_dir, tmp_path: Path) -> None:
    """Gemma stores w - 1 (mean 0), its sandwich output norms carry the block gain; Llama stores w (mean 1)."""
    from safetensors.torch import load_file

    gemma = synth.synthesize(all_recipes()["gemma-3-1b"], tmp_path / "g", tokenizer_from=fixture_dir("gemma3"),
                             config_transform=shrink_text(num_hidden_layers=1, hidden_size=256, intermediate_size=512,
                                                          vocab_size=512, num_attention_heads=2, head_dim=64))
    weights = load_file(gemma / "model-00001-of-00001.safetensors")
    assert abs(weights["model.layers.0.input_layernorm.weight"].float().mean()) < 0.05
    gain = synth.BLOCK_OUTPUT_GAIN - 1.0
    assert weights["model.layers.0.post_attention_layernorm.weight"].float().mean() == pytest.approx(gain, rel=0.05)
    llama = synth.synthesize(all_recipes()["llama-3.2-1b"], tmp_path / "l", tokenizer_from=fixture_dir("llama"),
                             config_transform=shrink_text(num_hidden_layers=1, hidden_size=256, intermediate_size=512,
                                                          vocab_size=512, head_dim=32, num_attention_heads=8))
    weights = load_file(llama / "model-00001-of-00001.safetensors")
    assert weights["model.layers.0.input_layernorm.weight"].float().mean() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("gain,peaked", [(synth.BLOCK_OUTPUT_GAIN, True), (1.0, False)])
def test_random_weights_give_peaked_outputs(gain: float, peaked: bool, fixture_dir, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """At Gemma 3's real layout (sandwich norms, scaled tied embeddings) the outputs are peaked and
    not the input token; with unit output-norm gain the tied table just echoes the input (the rule
    the gain exists for), so this test can fail."""
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(synth, "BLOCK_OUTPUT_GAIN", gain)
    out = synth.synthesize(all_recipes()["gemma-3-1b"], tmp_path / "g", tokenizer_from=fixture_dir("gemma3"),
                           config_transform=shrink_text(num_hidden_layers=16, hidden_size=256, intermediate_size=512,
                                                        vocab_size=4096, num_attention_heads=4, head_dim=64))
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = torch.tensor([[(i * 97 + 13) % 4000 + 20 for i in range(64)]])
    with torch.no_grad():
        logits = model(ids).logits[0]
    top1 = logits.softmax(-1).max(-1).values.mean().item()
    echoes = (logits.argmax(-1) == ids[0]).float().mean().item()
    assert (0.3 < top1 and echoes < 0.2) is peaked, (top1, echoes)


def test_cli_refuses_an_existing_output(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    result = run_cli("models", "synth", "smollm2-135m", "--output", str(tmp_path / "taken"))
    assert result.returncode == 1 and "already exists" in result.stderr and "--force" in result.stderr


def test_cli_refuses_an_unknown_recipe_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cli("models", "synth", "gemma-3-9b", "--output", str(tmp_path / "out"))
    assert result.returncode == 1 and "Unknown model 'gemma-3-9b'" in result.stderr and "gemma-3-4b" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
