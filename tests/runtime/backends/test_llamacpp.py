"""The llama.cpp tier on the embedded SmolLM2-135M GGUF: generation, streaming, and prefix-cached
label scoring that gives the same logits as scoring from scratch."""

from __future__ import annotations

import numpy as np
import pytest

from slmkit.runtime.backends.base import BackendError, Generation
from slmkit.runtime.backends.llamacpp import LlamaCppBackend
from slmkit.runtime.default import METHOD_PROMPTS, default_spec_path
from slmkit.runtime.models.embedded import resolve_model_file
from slmkit.runtime.request import Request
from slmkit.runtime.router.label_logits import LabelLogitsRouter, split_prompt
from slmkit.runtime.spec import RouterSpec, TierSpec

TIER = TierSpec(name="on-device", backend="llama.cpp", model="embedded:smollm2-135m", on_device=True,
                context_tokens=1024, threads=2, max_tokens=16)


@pytest.fixture(scope="module")
def backend():
    engine = LlamaCppBackend(TIER, resolve_model_file(TIER.model, default_spec_path().parent))
    yield engine
    engine.close()


def test_generation_uses_the_chat_template_and_counts_tokens(backend: LlamaCppBackend) -> None:
    generation = backend.generate([{"role": "user", "content": "What is the capital of France?"}], 12)
    assert generation.text.strip() and generation.output_tokens <= 12 and generation.input_tokens > 10
    assert not generation.simulated and generation.model.endswith(".gguf")
    again = backend.generate([{"role": "user", "content": "What is the capital of France?"}], 12)
    assert again.text == generation.text  # greedy


def test_the_same_request_gets_the_same_answer_whatever_came_before(backend: LlamaCppBackend) -> None:
    """llama.cpp's logits differ slightly between batch splits of one prompt (a reused KV-cache prefix
    plus the rest vs one prefill), enough to flip a greedy pick on SmolLM2: "Name a color." answered
    "The color I'm referring to…" fresh and "Alec 2: The color of the rainbow." right after itself."""
    messages = [{"role": "user", "content": "Name a color."}]
    fresh = LlamaCppBackend(TIER, backend.path)
    try:
        expected = fresh.generate(messages, 12).text
    finally:
        fresh.close()
    answers = [backend.generate(messages, 12).text, backend.generate(messages, 12).text]
    backend.generate([{"role": "user", "content": "Name a colorful bird."}], 12)
    answers.append(backend.generate(messages, 12).text)
    assert answers == [expected] * 3


def test_stream_pieces_add_up_to_the_generation(backend: LlamaCppBackend) -> None:
    events = list(backend.stream([{"role": "user", "content": "Name three colors."}], 10))
    *pieces, final = events
    assert isinstance(final, Generation) and "".join(pieces) == final.text and final.ttft_ms is not None


def test_prompt_too_long_for_the_context_is_a_backend_error(backend: LlamaCppBackend) -> None:
    with pytest.raises(BackendError, match="does not fit"):
        backend.generate([{"role": "user", "content": "word " * 2000}], 8)


def test_cached_prefix_scores_equal_scoring_from_scratch(backend: LlamaCppBackend) -> None:
    prefix, rest = split_prompt(METHOD_PROMPTS["label_logits"])
    suffixes = [rest.replace("{system}", "").replace("{user}", text)
                for text in ("Classify the sentiment: great movie!", "Prove that there are infinitely many primes.")]
    first, evaluated_first = backend.next_token_logits(prefix, suffixes[0])
    second, evaluated_second = backend.next_token_logits(prefix, suffixes[1])
    assert evaluated_second < evaluated_first  # the prefix was not evaluated again
    fresh = LlamaCppBackend(TIER, backend.path)
    try:
        reference, _ = fresh.next_token_logits(prefix, suffixes[1])
    finally:
        fresh.close()
    np.testing.assert_allclose(second, reference, atol=1e-3)
    assert not np.allclose(first, second)


def test_label_logits_router_decides_with_the_cache(backend: LlamaCppBackend) -> None:
    spec = RouterSpec(method="label_logits", tier="on-device", prompt=METHOD_PROMPTS["label_logits"])
    router = LabelLogitsRouter(spec, backend)
    assert len(set(router.label_ids)) == 3
    decision = router.decide(Request("Translate 'hello' into French."))
    assert decision.label in ("simple", "medium", "complex") and abs(sum(decision.probabilities.values()) - 1) < 1e-9
    assert decision.tokens > 0 and "simple=" in decision.raw
    biased = LabelLogitsRouter(spec.model_copy(update={"bias": {"medium": 50.0}}), backend).decide(Request("Hi"))
    assert biased.label == "medium"


def test_token_logprobs_come_from_the_logits_each_greedy_token_was_chosen_from(backend: LlamaCppBackend) -> None:
    messages = [{"role": "user", "content": "Name a color."}]
    backend.generator.reset()  # both from an empty KV cache: the observer must not change the answer
    plain = backend.generate(messages, 12)
    backend.generator.reset()
    scored = backend.generate(messages, 12, logprobs=True)
    assert scored.text == plain.text and plain.token_logprobs is None
    assert scored.token_logprobs and len(scored.token_logprobs) == len(scored.token_margins)
    assert len(scored.token_logprobs) in (scored.output_tokens, scored.output_tokens + 1)  # + end of turn
    assert all(lp <= 0 for lp in scored.token_logprobs) and min(scored.token_margins) >= 0  # the argmax every time


def test_the_option_walk_reuses_the_answer_prompt_and_scores_like_scratch(backend: LlamaCppBackend) -> None:
    from slmkit.runtime.confidence.options import choose

    messages = [{"role": "user", "content": "Is the sky blue? Answer yes, no or maybe."}]
    options = ["yes", "no", "maybe"]
    with backend.continuation(messages) as cold:
        first = choose(cold, [cold.tokenize(o) for o in options])
    backend.generate(messages, 4)
    with backend.continuation(messages) as warm:
        again = choose(warm, [warm.tokenize(o) for o in options])
        assert warm.reused == warm.prompt_tokens - 1  # only the last prompt token evaluated again
    assert again.index == first.index and again.probability == pytest.approx(first.probability, rel=1e-3)


INVOICE = {"type": "object", "additionalProperties": False, "required": ["vendor", "total", "paid"],
           "properties": {"vendor": {"type": "string", "maxLength": 40}, "total": {"type": "number"},
                          "paid": {"type": "boolean"}}}


@pytest.mark.parametrize("response_format, schema", [
    ({"type": "json_schema", "json_schema": {"name": "invoice", "schema": INVOICE}}, INVOICE),
    ({"type": "json_object"}, {"type": "object"}),
])
def test_response_format_constrains_decoding_to_the_schema(backend: LlamaCppBackend, response_format: dict,
                                                           schema: dict) -> None:
    import json

    import jsonschema

    from slmkit.runtime.request import ChatOptions

    messages = [{"role": "user", "content": "Invoice from ACME Corp, total 129.50 EUR, already paid. Extract it."}]
    free = backend.generate(messages, 60)
    with pytest.raises(json.JSONDecodeError):  # a 135M model left alone does not answer in JSON
        json.loads(free.text)
    answer = backend.generate(messages, 120, options=ChatOptions(response_format=response_format))
    assert answer.finish_reason == "stop", answer.text
    jsonschema.validate(json.loads(answer.text), schema)


def test_a_schema_llama_cpp_cannot_compile_is_a_backend_error(backend: LlamaCppBackend) -> None:
    from slmkit.runtime.request import ChatOptions

    def asking(schema: dict) -> ChatOptions:
        return ChatOptions(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})

    with pytest.raises(BackendError, match="cannot build a grammar"):
        backend.generate([{"role": "user", "content": "hi"}], 8, options=asking({"$ref": "#/nowhere"}))
    remote = {"type": "object", "properties": {"a": {"$ref": "http://169.254.169.254/latest/meta-data"}}}
    with pytest.raises(BackendError, match="only local \\$refs"):  # llama-cpp-python would fetch it
        backend.generate([{"role": "user", "content": "hi"}], 8, options=asking(remote))


def test_openai_logprobs_cover_the_answer_tokens_with_sorted_alternatives(backend: LlamaCppBackend) -> None:
    from slmkit.runtime.request import ChatOptions

    messages = [{"role": "user", "content": "Name a color."}]
    plain = backend.generate(messages, 12)
    scored = backend.generate(messages, 12, options=ChatOptions(top_logprobs=3))
    assert scored.text == plain.text and plain.logprobs is None
    entries = scored.logprobs
    assert len(entries) == scored.output_tokens
    assert b"".join(bytes(e["bytes"]) for e in entries).decode("utf-8") == scored.text
    for entry in entries:
        top = entry["top_logprobs"]
        assert len(top) == 3 and [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert top[0]["token"] == entry["token"] and top[0]["logprob"] == pytest.approx(entry["logprob"])  # greedy
        assert entry["logprob"] <= 0


def test_stop_sequences_end_decoding_in_the_engine(backend: LlamaCppBackend) -> None:
    from slmkit.runtime.request import ChatOptions

    messages = [{"role": "user", "content": "List five fruits, one per line."}]
    whole = backend.generate(messages, 60)
    assert "\n" in whole.text.strip()
    cut = backend.generate(messages, 60, options=ChatOptions(stop=("\n",)))
    assert cut.finish_reason == "stop" and "\n" not in cut.text and whole.text.startswith(cut.text)
    assert cut.output_tokens < whole.output_tokens  # stopped decoding, not just cut afterwards
