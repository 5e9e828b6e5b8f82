"""slmkit.converter: turn Hugging Face checkpoints into on-device artifacts and prove parity.

Heavy libraries (torch, transformers) are imported inside the functions that need them so that
importing this package, and the CLI's help, stays fast.
"""

__version__ = "0.1.0"
