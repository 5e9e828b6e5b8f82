"""Prompt and decode speed of the int4 ONNX artifact vs the Q4_K_M GGUF, on the same prompts.

Engines: onnxruntime-genai (what an app runs), a plain onnxruntime session loop, and llama.cpp;
plus, for comparison, the same int4 model made by onnxruntime-genai's own builder (fused
GroupQueryAttention) where that builder can convert the model. Each figure is tokens per second,
best of --repeat runs (the machine is noisy). Missing artifacts are converted first into out/. Usage:
    python bench/onnx_decode.py [MODEL ...] [--threads 2] [--decode 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from slmkit.converter.parity.prompts import builtin_prompts


def ensure(model: str, target: str, quant: str) -> Path:
    folder = Path("out") / f"{model}-{target}-{quant}"
    if not (folder / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "slmkit.cli", "convert", model, "--target", target,
                        "--quant", quant, "--output", str(folder), "--force"], check=True)
    return folder


def ensure_builder(model: str) -> Path | str:
    """onnxruntime-genai's builder output for the same checkpoint, or why it could not be made."""
    folder = Path("out") / f"{model}-genai-builder-int4"
    if (folder / "genai_config.json").is_file():
        return folder
    checkpoint = subprocess.run([sys.executable, "-m", "slmkit.cli", "models", "path", model],
                                capture_output=True, text=True, check=True).stdout.strip()
    result = subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", checkpoint, "-o",
                             str(folder), "-p", "int4", "-e", "cpu", "-c", str(folder) + ".cache"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return result.stderr.strip().splitlines()[-1]
    return folder


def prompt_texts() -> list[str]:
    texts = []
    for prompt in builtin_prompts():
        if prompt.text is not None:
            texts.append(prompt.text)
        else:
            texts.append("".join(f"{m['role']}: {m['content']}\n" for m in prompt.messages or []))
    return texts


def bench_genai(folder: Path, texts: list[str], decode: int, threads: int) -> tuple[int, float, float]:
    import json

    import onnxruntime_genai as og

    config = og.Config(str(folder))
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
    model = og.Model(config)
    tokenizer = og.Tokenizer(model)
    tokenizer.update_options(add_special_tokens="true")
    prompt_tokens = prefill_s = decode_s = 0.0
    generated = 0
    for text in texts:
        ids = np.array([tokenizer.encode(text)], dtype=np.int32)
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=ids.shape[1] + decode, do_sample=False)
        generator = og.Generator(model, params)
        start = time.perf_counter()
        generator.append_tokens(ids)
        prefill_s += time.perf_counter() - start
        start = time.perf_counter()
        while not generator.is_done():  # an app's loop: stops at EOS or max_length
            generator.generate_next_token()
            generated += 1
        decode_s += time.perf_counter() - start
        prompt_tokens += ids.shape[1]
    return int(prompt_tokens), prompt_tokens / prefill_s, generated / decode_s


def bench_onnxruntime(folder: Path, texts: list[str], decode: int, threads: int) -> tuple[int, float, float]:
    from transformers import AutoTokenizer

    from slmkit.runtime.engines.onnxruntime import OrtSession

    session = OrtSession(folder / "model.onnx", threads=threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    empty = np.zeros((1, session.kv_heads, 0, session.head_dim), dtype=session.kv_dtype)
    prompt_tokens = prefill_s = decode_s = 0.0
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        start = time.perf_counter()
        logits, past = session._run(ids, [empty] * len(session.past_names), 0)
        prefill_s += time.perf_counter() - start
        start = time.perf_counter()
        position = len(ids)
        for _ in range(decode):
            logits, past = session._run([int(logits[-1].argmax())], past, position)
            position += 1
        decode_s += time.perf_counter() - start
        prompt_tokens += len(ids)
    return int(prompt_tokens), prompt_tokens / prefill_s, decode * len(texts) / decode_s


def bench_llamacpp(folder: Path, texts: list[str], decode: int, threads: int) -> tuple[int, float, float]:
    import json

    import llama_cpp

    gguf = folder / json.loads((folder / "manifest.json").read_text())["model_file"]
    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=4096, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    vocab = llm.n_vocab()
    prompt_tokens = prefill_s = decode_s = 0.0
    for text in texts:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        llm.reset()
        start = time.perf_counter()
        llm.eval(ids)
        prefill_s += time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(decode):
            row = np.ctypeslib.as_array(ctypes.cast(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                                    ctypes.POINTER(ctypes.c_float)), shape=(vocab,))
            llm.eval([int(row.argmax())])
        decode_s += time.perf_counter() - start
        prompt_tokens += len(ids)
    return int(prompt_tokens), prompt_tokens / prefill_s, decode * len(texts) / decode_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decode", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    texts = prompt_texts()
    print(f"{len(texts)} prompts, {args.decode} greedy tokens after each, {args.threads} threads, best of {args.repeat}")
    print(f"{'model':<14} {'engine':<27} {'prompt tok':>10} {'prompt tok/s':>13} {'decode tok/s':>13} "
          f"{'prompt ratio':>13} {'decode ratio':>13}")
    for model in args.models:
        onnx_dir, hqq_dir = ensure(model, "onnx", "int4"), ensure(model, "onnx", "int4-hqq")
        runs = {
            "llama.cpp Q4_K_M": (bench_llamacpp, ensure(model, "gguf", "q4_k_m")),
            "onnxruntime-genai int4": (bench_genai, onnx_dir),
            "onnxruntime int4": (bench_onnxruntime, onnx_dir),
            "onnxruntime-genai int4-hqq": (bench_genai, hqq_dir),
        }
        builder = ensure_builder(model)
        if isinstance(builder, Path):
            runs["genai builder int4 (genai)"] = (bench_genai, builder)
        else:
            print(f"{model:<14} genai builder int4: cannot convert this model ({builder})")
        results = {}
        for engine, (bench, folder) in runs.items():
            trials = [bench(folder, texts, args.decode, args.threads) for _ in range(args.repeat)]
            results[engine] = (trials[0][0], max(t[1] for t in trials), max(t[2] for t in trials))
        base = results["llama.cpp Q4_K_M"]
        for engine, (tokens, prompt_rate, decode_rate) in results.items():
            print(f"{model:<14} {engine:<27} {tokens:>10} {prompt_rate:>13.1f} {decode_rate:>13.1f} "
                  f"{prompt_rate / base[1]:>13.2f} {decode_rate / base[2]:>13.2f}")
    print("(ratio = engine / llama.cpp; > 1 means faster than llama.cpp)")


if __name__ == "__main__":
    main()
