"""Distribution-level comparison of an artifact's logits with the reference's.

Exact logits legitimately differ between engines (llama.cpp picks kernels by batch size), so the
verdict rests on distributions: KL divergence, top-1 agreement, greedy agreement, perplexity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """float64 log-probabilities (torch's kernel: numpy takes ~10x longer on 262K-token rows)."""
    import torch

    return torch.log_softmax(torch.from_numpy(np.ascontiguousarray(logits)).double(), dim=-1).numpy()


def kl_divergence(ref_logits: np.ndarray, art_logits: np.ndarray, chunk: int = 64) -> np.ndarray:
    """KL(reference || artifact) per row, in nats (in row chunks: 262K-token vocabularies are big)."""
    import torch

    out = np.empty(ref_logits.shape[0], dtype=np.float64)
    for start in range(0, ref_logits.shape[0], chunk):
        ref_lp = torch.from_numpy(log_softmax(ref_logits[start:start + chunk]))
        art_lp = torch.from_numpy(log_softmax(art_logits[start:start + chunk]))
        out[start:start + chunk] = (ref_lp.exp() * (ref_lp - art_lp)).sum(dim=-1).clamp_min(0.0).numpy()
    return out


def _nll_sum(logits: np.ndarray, targets: np.ndarray) -> float:
    """Summed negative log-likelihood of `targets` [n] under `logits` [n, vocab]."""
    lp = log_softmax(logits)
    return float(-lp[np.arange(lp.shape[0]), targets].sum())


def common_vocab(ref: np.ndarray, art: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trim padding rows some checkpoints keep past the tokenizer's vocabulary."""
    width = min(ref.shape[-1], art.shape[-1])
    return ref[..., :width], art[..., :width]


@dataclass
class PromptScores:
    prompt_id: str
    n_tokens: int
    kl: np.ndarray  # per position
    top1: np.ndarray  # bool per position
    max_abs_logit_diff: float
    ref_nll: float  # mean next-token negative log-likelihood
    art_nll: float
    greedy_match: float  # share of greedy tokens equal before the first divergence
    decode_kl: np.ndarray  # per decode step while sequences agree
    tokens_match: bool
    ref_greedy: list[int]
    art_greedy: list[int]


# Positions scored at once: each chunk of a 262K-token vocabulary's logits is ~70 MB per float64 copy.
SCORE_CHUNK = 64


def score_prompt(prompt_id: str, ids: list[int], ref: Any, art: Any,
                 ref_decode: tuple[list[int], np.ndarray], art_decode: tuple[list[int], np.ndarray],
                 tokens_match: bool) -> PromptScores:
    """Every metric of one prompt in one pass over position chunks.

    `ref` and `art` are prefill logits [positions, vocab]: arrays, or anything that gives row
    slices as arrays and a `shape` (run.NpyRows reads a stored reference's rows on demand, so a
    long prompt's logits never sit in memory whole).
    """
    positions = ref.shape[0]
    kl = np.empty(positions, dtype=np.float64)
    top1 = np.empty(positions, dtype=bool)
    max_diff, ref_nll, art_nll = 0.0, 0.0, 0.0
    targets = np.asarray(ids[1:positions + 1])
    for start in range(0, positions, SCORE_CHUNK):
        stop = min(start + SCORE_CHUNK, positions)
        r, a = common_vocab(np.asarray(ref[start:stop]), np.asarray(art[start:stop]))
        kl[start:stop] = kl_divergence(r, a)
        top1[start:stop] = r.argmax(-1) == a.argmax(-1)
        max_diff = max(max_diff, float(np.abs(r.astype(np.float32) - a.astype(np.float32)).max()))
        rows = targets[start:stop]
        if rows.size:
            ref_nll += _nll_sum(r[:rows.size], rows)
            art_nll += _nll_sum(a[:rows.size], rows)
    ref_tokens, ref_steps = ref_decode
    art_tokens, art_steps = art_decode
    agree = 0
    for x, y in zip(ref_tokens, art_tokens):
        if x != y:
            break
        agree += 1
    steps = min(agree + 1, len(ref_tokens))  # the first diverging step is still comparable
    r_steps, a_steps = common_vocab(np.asarray(ref_steps[:steps]), np.asarray(art_steps[:steps]))
    return PromptScores(
        prompt_id=prompt_id,
        n_tokens=len(ids),
        kl=kl,
        top1=top1,
        max_abs_logit_diff=max_diff,
        ref_nll=ref_nll / max(targets.size, 1),
        art_nll=art_nll / max(targets.size, 1),
        greedy_match=agree / max(len(ref_tokens), 1),
        decode_kl=kl_divergence(r_steps, a_steps),
        tokens_match=tokens_match,
        ref_greedy=ref_tokens,
        art_greedy=art_tokens,
    )


def aggregate(scores: list[PromptScores]) -> dict[str, float]:
    """The report's metrics over every prompt: top-1 agreement and KL (nats; mean, p99, max) over all
    positions, greedy match, decode KL, and perplexities weighted by each prompt's scored tokens
    (NaN when no prompt has a second token; `judge` then leaves ppl_delta ungated).
    """
    kl = np.concatenate([s.kl for s in scores])
    top1 = np.concatenate([s.top1 for s in scores])
    decode_kl = np.concatenate([s.decode_kl for s in scores])
    weights = np.array([s.n_tokens - 1 for s in scores], dtype=np.float64)
    if weights.sum() > 0:
        ref_nll = float(np.average([s.ref_nll for s in scores], weights=weights))
        art_nll = float(np.average([s.art_nll for s in scores], weights=weights))
    else:  # one-token prompts only: no next token to score, perplexity is undefined
        ref_nll = art_nll = float("nan")
    return {
        "top1_agreement": float(top1.mean()),
        "kl_mean": float(kl.mean()),
        "kl_p99": float(np.quantile(kl, 0.99)),
        "kl_max": float(kl.max()),
        "max_abs_logit_diff": max(s.max_abs_logit_diff for s in scores),
        "greedy_match": float(np.mean([s.greedy_match for s in scores])),
        "greedy_full_matches": sum(s.greedy_match == 1.0 for s in scores),
        "decode_kl_mean": float(decode_kl.mean()) if decode_kl.size else 0.0,
        "ppl_reference": float(np.exp(ref_nll)),
        "ppl_artifact": float(np.exp(art_nll)),
        "ppl_delta": float(np.exp(art_nll - ref_nll) - 1.0),
        "tokenizer_match": float(np.mean([s.tokens_match for s in scores])),
        "positions": int(kl.size),
        "prompts": len(scores),
    }


# metric -> (threshold key, direction): "min" fails below the bound, "max" above it.
CHECKS: dict[str, tuple[str, str]] = {
    "top1_agreement": ("top1_min", "min"),
    "kl_mean": ("kl_mean_max", "max"),
    "kl_p99": ("kl_p99_max", "max"),
    "kl_max": ("kl_max_max", "max"),
    "greedy_match": ("greedy_min", "min"),
    "ppl_delta": ("ppl_delta_max", "max"),
    "decode_kl_mean": ("decode_kl_max", "max"),
}


def judge(metrics: dict[str, float], thresholds: dict[str, float], vocab_size: int) -> dict[str, dict[str, object]]:
    """Each metric's verdict; tokenizer_match must be exact whatever the quantization.

    `ppl_delta` is not gated when the reference's perplexity on the prompts exceeds `vocab_size`
    (worse than a uniform guess over the vocabulary): the prompts are not text this model predicts,
    as with random-weight checkpoints, whose prompt tokens sit ~20 nats below the argmax, so the
    same logit error moves perplexity ~10x more than in a language model. KL and top-1 still gate.
    """
    verdicts: dict[str, dict[str, object]] = {}
    for metric, (key, direction) in CHECKS.items():
        bound = thresholds[key]
        value = metrics[metric]
        ok = value >= bound if direction == "min" else abs(value) <= bound
        verdicts[metric] = {"value": value, "bound": bound, "direction": direction, "passed": bool(ok)}
    if np.isnan(metrics["ppl_reference"]):
        verdicts["ppl_delta"] |= {"passed": True, "gated": False,
                                  "note": "not gated: no prompt has a second token whose perplexity could be scored"}
    elif metrics["ppl_reference"] > vocab_size:
        verdicts["ppl_delta"] |= {"passed": True, "gated": False,
                                  "note": f"not gated: reference perplexity {metrics['ppl_reference']:.3g} exceeds "
                                          f"the vocabulary size {vocab_size} (these prompts are not text it predicts)"}
    verdicts["tokenizer_match"] = {"value": metrics["tokenizer_match"], "bound": 1.0, "direction": "min",
                                   "passed": metrics["tokenizer_match"] == 1.0}
    return verdicts
