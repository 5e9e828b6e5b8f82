"""Parity metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from slmkit.converter.parity import metrics
from slmkit.converter.parity.metrics import aggregate, judge, kl_divergence, score_prompt


def test_kl_of_identical_distributions_is_zero() -> None:
    logits = np.random.default_rng(0).normal(size=(5, 50)).astype(np.float32)
    assert np.allclose(kl_divergence(logits, logits), 0.0, atol=1e-12)


def test_kl_matches_hand_computation() -> None:
    p = np.array([[0.7, 0.2, 0.1]])
    q = np.array([[0.5, 0.3, 0.2]])
    expected = float((p * np.log(p / q)).sum())
    assert kl_divergence(np.log(p), np.log(q))[0] == pytest.approx(expected, rel=1e-9)


def test_kl_is_chunked_consistently() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(130, 20)), rng.normal(size=(130, 20))
    assert np.allclose(kl_divergence(a, b, chunk=7), kl_divergence(a, b, chunk=1000))


def test_nll_is_perplexity_log() -> None:
    uniform = np.zeros((4, 8))
    score = score_prompt("p", [0, 1, 2, 3], uniform, uniform, ([1], uniform[:1]), ([1], uniform[:1]), True)
    assert score.ref_nll == pytest.approx(np.log(8)) and score.art_nll == pytest.approx(np.log(8))


def test_scores_do_not_depend_on_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    ref, art = rng.normal(size=(150, 30)) * 4, rng.normal(size=(150, 30)) * 4
    ids = list(rng.integers(0, 30, size=150))
    whole = score_prompt("p", ids, ref, art, ([1], ref[:1]), ([1], art[:1]), True)
    monkeypatch.setattr(metrics, "SCORE_CHUNK", 7)
    chunked = score_prompt("p", ids, ref, art, ([1], ref[:1]), ([1], art[:1]), True)
    assert np.allclose(whole.kl, chunked.kl) and (whole.top1 == chunked.top1).all()
    assert (whole.ref_nll, whole.art_nll, whole.max_abs_logit_diff) == pytest.approx(
        (chunked.ref_nll, chunked.art_nll, chunked.max_abs_logit_diff))
    assert whole.ref_nll != pytest.approx(whole.art_nll)  # the two sides are read separately


def _decode(tokens: list[int], vocab: int = 6) -> tuple[list[int], np.ndarray]:
    rows = np.full((len(tokens), vocab), -5.0)
    rows[np.arange(len(tokens)), tokens] = 5.0
    return tokens, rows


def test_greedy_match_counts_tokens_before_first_divergence() -> None:
    logits = np.eye(6)[[1, 2, 3]] * 4
    score = score_prompt("p", [0, 1, 2], logits, logits, _decode([1, 2, 3, 4]), _decode([1, 2, 5, 4]), True)
    assert score.greedy_match == 0.5
    assert score.decode_kl.shape == (3,)  # agreeing steps plus the diverging one


def test_judge_fails_each_bound_it_should() -> None:
    logits = np.eye(6)[[1, 2, 3]] * 4
    shifted = np.roll(logits, 1, axis=1)
    scores = [score_prompt("p", [0, 1, 2], logits, shifted, _decode([1]), _decode([2]), False)]
    metrics = aggregate(scores)
    verdicts = judge(metrics, {"top1_min": 0.9, "kl_mean_max": 0.01, "kl_p99_max": 0.05, "kl_max_max": 0.1, "greedy_min": 0.5,
                               "ppl_delta_max": 0.1, "decode_kl_max": 0.1}, vocab_size=6)
    assert metrics["top1_agreement"] == 0.0
    assert not any(v["passed"] for v in verdicts.values())


def test_judge_passes_identical_outputs() -> None:
    logits = np.eye(6)[[1, 2, 3]] * 4
    scores = [score_prompt("p", [0, 1, 2], logits, logits, _decode([1, 2]), _decode([1, 2]), True)]
    verdicts = judge(aggregate(scores), {"top1_min": 1.0, "kl_mean_max": 0.0, "kl_p99_max": 0.0, "kl_max_max": 0.0, "greedy_min": 1.0,
                                         "ppl_delta_max": 0.0, "decode_kl_max": 0.0}, vocab_size=6)
    assert all(v["passed"] for v in verdicts.values())


BOUNDS = {"top1_min": 0.0, "kl_mean_max": 1.0, "kl_p99_max": 1.0, "kl_max_max": 1.0, "greedy_min": 0.0,
          "ppl_delta_max": 0.002, "decode_kl_max": 1.0}


def test_ppl_delta_is_gated_only_where_the_model_predicts_the_prompts() -> None:
    metrics = {"top1_agreement": 1.0, "kl_mean": 0.0, "kl_p99": 0.0, "kl_max": 0.0, "greedy_match": 1.0,
               "decode_kl_mean": 0.0, "tokenizer_match": 1.0, "ppl_delta": 0.004}
    language_model = judge(metrics | {"ppl_reference": 30.0}, BOUNDS, vocab_size=50_000)["ppl_delta"]
    assert not language_model["passed"] and "gated" not in language_model
    random_model = judge(metrics | {"ppl_reference": 8e9}, BOUNDS, vocab_size=50_000)["ppl_delta"]
    assert random_model["passed"] and random_model["gated"] is False and "vocabulary size 50000" in random_model["note"]


def test_one_token_prompts_leave_perplexity_undefined_and_ungated_while_kl_still_gates() -> None:
    logits = np.eye(6)[[1]] * 4
    scores = [score_prompt("p", [0], logits, np.roll(logits, 1, axis=1), _decode([1]), _decode([1]), True)]
    metrics = aggregate(scores)
    assert np.isnan(metrics["ppl_reference"]) and np.isnan(metrics["ppl_delta"])
    verdicts = judge(metrics, BOUNDS | {"kl_max_max": 0.1}, vocab_size=6)
    assert verdicts["ppl_delta"]["passed"] and verdicts["ppl_delta"]["gated"] is False
    assert not verdicts["kl_max"]["passed"]


def test_every_quantization_has_every_bound() -> None:
    from slmkit.converter.parity.metrics import CHECKS
    from slmkit.converter.targets.registry import target_specs
    from slmkit.converter.targets.spec import THRESHOLD_KEYS

    assert set(THRESHOLD_KEYS) == {key for key, _ in CHECKS.values()}
    for spec in target_specs().values():
        for quant in spec.quants:
            assert set(quant.thresholds) == set(THRESHOLD_KEYS), (spec.name, quant.name)
