"""The parity reference in bounded memory: stored-dtype layers widened per forward, or streamed from
disk, compute exactly what a float32 model computes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from slmkit.converter.models.resolve import resolve
from slmkit.converter.models.reference import load_reference_model
from slmkit.converter.parity.torch_runner import TorchRunner

IDS = [(i * 37 + 11) % 390 + 5 for i in range(40)]


def rounded_copies(fixture: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The fixture stored in bf16, and the same bf16 values stored in float32."""
    from safetensors.torch import load_file, save_file

    copies = []
    for dtype in (torch.bfloat16, torch.float32):
        out = tmp_path / f"{fixture.name}-{str(dtype).split('.')[-1]}"
        shutil.copytree(fixture, out)
        for file in out.glob("*.safetensors"):
            weights = {k: v.to(torch.bfloat16).to(dtype) for k, v in load_file(file).items()}
            save_file(weights, file, metadata={"format": "pt"})
        copies.append(out)
    return copies[0], copies[1]


@pytest.mark.parametrize("name", ["llama", "gemma3", "gemma3-multimodal"])
def test_bf16_layers_compute_as_float32(name: str, fixture_dir, tmp_path: Path) -> None:
    bf16, float32 = rounded_copies(fixture_dir(name), tmp_path)
    ckpt = resolve(str(bf16))
    model = load_reference_model(ckpt)
    tables = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    stored = {p.dtype for n, p in model.named_parameters() if ".layers." in n or id(p) in tables}
    other_dtypes = {p.dtype for n, p in model.named_parameters() if ".layers." not in n and id(p) not in tables}
    assert stored == {torch.bfloat16} and other_dtypes == {torch.float32}
    with torch.no_grad():
        got = model(input_ids=torch.tensor([IDS])).logits[0].numpy()
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16, torch.float32}, "back after forward"
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    with torch.no_grad():
        expected = load_reference_model(resolve(str(float32)))(input_ids=torch.tensor([IDS])).logits[0].numpy()
    np.testing.assert_array_equal(got, expected)
    streamed = load_reference_model(ckpt, streamed=True)
    assert all(p.device.type == "meta" for n, p in streamed.named_parameters() if ".layers." in n)
    with torch.no_grad():
        again = streamed(input_ids=torch.tensor([IDS])).logits[0].numpy()
    np.testing.assert_array_equal(again, got)


def test_runner_tokenizes_before_loading_and_releases_the_model(fixture_dir) -> None:
    runner = TorchRunner(resolve(str(fixture_dir("llama"))), threads=1)
    assert runner.model is None and runner.tokenize("hello world")
    runner.load()
    decode = runner.greedy(IDS[:10], 3)
    assert decode.prefill.shape[0] == 10 and len(decode.tokens) == 3
    runner.close()
    assert runner.model is None and runner.tokenize("still tokenizes")
