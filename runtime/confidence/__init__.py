"""The confidence check: how likely an on-device answer is right, and whether to escalate it.

Methods (chosen by `confidence_check.method` in routing.json; each pinned by golden vectors):
- `sampled_rating`: the seed's check: the tier writes a 1-10 self-rating, parsed from text.
- `self_rating`: the same prompt, read as the expected value of the rating over the tier's
  probabilities of the tokens 1-10 (masked logits): always a number, one forward pass.
- `token_logprob`: from the answer's own token log-probabilities; no second pass.
- `options`: for a request that lists a closed set of labels, the answer is the option the tier
  scores best and the confidence its probability among the options.
- `trained`: a logistic head (head.py) over features of the answer kept (the option walk's
  probability and margin, or the generated tokens' log-probabilities), fitted by
  `slmkit confidence train` on an app's labelled answers.
"""

from slmkit.runtime.confidence.rating import parse_rating, rating_or_default, should_escalate

__all__ = ["parse_rating", "rating_or_default", "should_escalate"]
