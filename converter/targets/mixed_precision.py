"""Which weights a 4-bit artifact keeps at 8 bits, shared by every target's int4 mix.

llama.cpp's Q4_K_M spends more bits on `attn_v`, `ffn_down` and `output`; slmkit's int4 does the
same on every target so one parity bound fits them all. On Gemma 3 270M (ONNX) the two
projections halve the KL (0.110 -> 0.053) for 4 % more bytes; on SmolLM2 (Core ML) the whole mix
takes the KL from 0.42 to 0.11 (docs/onnx.md, docs/coreml.md). The output projection is 8-bit
too; when the embedding is tied to it, the shared table is.
"""

from __future__ import annotations

# Weight roles (a module name's last component) quantized at 8 bits in int4 artifacts.
EIGHT_BIT_PROJECTIONS = ("v_proj", "down_proj")
# The token table and the output projection (one tensor when tied).
EIGHT_BIT_TABLES = ("embed_tokens", "lm_head")
