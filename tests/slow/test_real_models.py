"""The embedded default models end to end: pull, convert to Q4_K_M, parity, generation, oracle.

Minutes, not seconds: run with `-m slow` (CI does, after the fast tier).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow

MODELS = ["smollm2-135m", "gemma-3-270m"]
# A prompt each model should complete with a well-known fact (SmolLM2 is instruction-tuned, Gemma 270M is base).
FACT = {
    "smollm2-135m": ([{"role": "user", "content": "What is the capital of France? Answer in one word."}], "paris"),
    "gemma-3-270m": ("Q: What is the capital of Germany?\nA: Berlin\nQ: What is the capital of Italy?\nA: Rome\n"
                     "Q: What is the capital of France?\nA:", "paris"),
}


@pytest.fixture(scope="module")
def q4_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("real")
    artifacts = {}
    for name in MODELS:
        out = root / f"{name}-q4_k_m"
        result = run_cli("convert", name, "--target", "gguf", "--quant", "q4_k_m", "--output", str(out), timeout=1800)
        assert result.returncode == 0, result.stderr
        artifacts[name] = out
    return artifacts


@pytest.mark.parametrize("name", MODELS)
def test_q4_k_m_passes_parity(name: str, q4_artifacts: dict[str, Path], tmp_path: Path) -> None:
    report_path = tmp_path / "parity.json"
    result = run_cli("parity", str(q4_artifacts[name]), "--report", str(report_path), "--threads", "2", timeout=1800)
    report = json.loads(report_path.read_text())
    assert result.returncode == 0, json.dumps(report["checks"], indent=1) + "\n" + "\n".join(report["tokenizer"]["problems"])
    assert report["passed"] and report["metrics"]["tokenizer_match"] == 1.0
    assert report["metrics"]["positions"] > 1000  # includes the long-context prompt


@pytest.mark.parametrize("name", MODELS)
def test_llama_cpp_generates_coherent_text(name: str, q4_artifacts: dict[str, Path]) -> None:
    from llama_cpp import Llama

    manifest = json.loads((q4_artifacts[name] / "manifest.json").read_text())
    llm = Llama(str(q4_artifacts[name] / manifest["model_file"]), n_ctx=512, n_threads=2, verbose=False)
    prompt, expected = FACT[name]
    if isinstance(prompt, list):
        text = llm.create_chat_completion(prompt, max_tokens=16, temperature=0.0)["choices"][0]["message"]["content"]
    else:
        text = llm(prompt, max_tokens=8, temperature=0.0)["choices"][0]["text"]
    llm.close()
    assert expected in text.lower(), text


@pytest.mark.oracle
@pytest.mark.parametrize("name", MODELS)
def test_f16_matches_official_converter(name: str, tmp_path: Path) -> None:
    from slmkit.converter import oracle
    from slmkit.runtime.models.recipe import get_recipe
    from slmkit.converter.models.resolve import resolve_recipe

    ckpt = resolve_recipe(get_recipe(name))
    result = run_cli("convert", name, "--quant", "f16", "--output", str(tmp_path / "ours"), timeout=1800)
    assert result.returncode == 0, result.stderr
    official = tmp_path / "official.gguf"
    oracle.run_official(ckpt.path, official, "f16")  # real vocabularies: the official hash table must know them
    ours = next((tmp_path / "ours").glob("*.gguf"))
    assert oracle.compare(ours, official) == oracle.KNOWN_OFFICIAL_DIFFERENCES.get(name, [])
