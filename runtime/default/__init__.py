"""The default bundle shipped inside slmkit: routing.json plus the trained router head.

Works offline: the on-device tier is the embedded SmolLM2-135M GGUF, the cloud tiers are
simulated until a spec points them at real endpoints.
"""

from importlib import resources
from pathlib import Path


def default_spec_path() -> Path:
    """The routing.json of the default bundle shipped as package data."""
    return Path(str(resources.files("slmkit.runtime.default") / "routing.json"))


TASK_GUIDE = (
    "Classify how hard a request is for an AI assistant.\n"
    "simple: classify, detect sentiment or intent, extract entities, fill a template, summarize a short text, "
    "answer from a given text, complete one function.\n"
    "medium: summarize a long document, rewrite or simplify text, answer an open factual question.\n"
    "complex: math, multi-step reasoning, code with several parts, creative writing, brainstorming, "
    "combining several documents, roleplay, unclear instructions.\n\n"
)

METHOD_PROMPTS = {
    # label_logits: everything before {system} is the fixed prefix kept in the KV cache.
    "label_logits": TASK_GUIDE + "System prompt: {system}\nRequest: {user}\nDifficulty (simple, medium or complex):",
    "prompt_json": TASK_GUIDE + 'Reply with JSON only, like {"complexity": "simple", "confidence": 0.9}.\n\n'
                                "System prompt: {system}\nRequest: {user}",
}
