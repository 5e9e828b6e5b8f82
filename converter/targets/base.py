"""The small interface every target implements (its facts live in its `TargetSpec`, spec.py; the
registry is registry.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.spec import TargetSpec

if TYPE_CHECKING:
    from slmkit.converter.models.checkpoint import Checkpoint
    from slmkit.runtime.engines.base import Runner
    from slmkit.runtime.progress import Steps


@dataclass
class ConvertResult:
    model_file: str  # path relative to the artifact folder
    details: dict[str, object]


@dataclass(frozen=True)
class ConvertOptions:
    """Knobs some targets take; a target that has no use for one refuses it rather than ignoring it."""

    block_size: int | None = None
    cache_length: int | None = None  # coreml: tokens the KV-cache states hold
    deployment_target: str | None = None  # coreml: minimum OS (iOS18 / macOS15 or later)


class Target(Protocol):
    spec: TargetSpec
    # Read from `spec`: name, quant names, default quant, engines (the first is parity's default) and
    # where tokenizer files go inside the artifact ("." when the runtime reads them beside the model).
    name: str
    quants: tuple[str, ...]
    default_quant: str
    tokenizer_dir: str
    engines: tuple[str, ...]

    def check_supported(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> None:
        """Refuse early (before any writing) what this target cannot convert."""

    def estimate_bytes(self, ckpt: Checkpoint, quant: str) -> int:
        """Peak disk the conversion needs in the output folder (checked before writing)."""

    def estimate_memory(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> int:
        """Peak memory (RSS bytes) of the conversion, from the checkpoint's shapes (checked before it starts)."""

    def context_limit(self, artifact: Path, manifest: dict, engine: str) -> int | None:
        """Tokens `engine` can hold for the artifact (prompt plus decoded), or None when it sizes its
        context to the request; parity skips built-in prompts past it."""

    def engine_memory(self, artifact: Path, manifest: dict, engine: str, n_ctx: int, vocab: int) -> int:
        """Peak memory of `engine` running the artifact for parity with `n_ctx` tokens of context."""

    def convert(self, ckpt: Checkpoint, quant: str, out: Path, steps: Steps,
                options: ConvertOptions) -> ConvertResult:
        """Write the artifact's model file(s) into `out`, a fresh staging folder, reporting each
        stage through `steps` (runtime/progress.py). Raises SlmkitError on a checkpoint the target
        cannot convert; converter/convert.py removes the staging folder on any failure."""

    def runner(self, artifact: Path, manifest: dict, threads: int | None, n_ctx: int, engine: str) -> Runner:
        """A parity Runner over the converted artifact, holding at least `n_ctx` tokens."""


class SpecAttributes:
    """Mixin for target implementations: the Target protocol's attributes, read from `spec`."""

    spec: TargetSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def quants(self) -> tuple[str, ...]:
        return self.spec.quant_names

    @property
    def default_quant(self) -> str:
        return self.spec.default_quant

    @property
    def tokenizer_dir(self) -> str:
        return self.spec.tokenizer_dir

    @property
    def engines(self) -> tuple[str, ...]:
        return self.spec.engines


def check_engine(target: Target, engine: str | None) -> str:
    """`engine`, or the target's default (its first) when None. Raises SlmkitError naming the
    engines the target runs.
    """
    if engine is None:
        return target.engines[0]
    if engine not in target.engines:
        raise SlmkitError(f"Target '{target.name}' cannot be run with engine '{engine}'.",
                          hint=f"Choose one of: {', '.join(target.engines)}.")
    return engine


def refuse_options(target: str, options: ConvertOptions, *used: str) -> None:
    """A knob the target has no use for is an error, never silently ignored."""
    for name, value in vars(options).items():
        if value is not None and name not in used:
            flag = "--" + name.replace("_", "-")
            raise SlmkitError(f"{flag} does not apply to --target {target}.", hint=f"Drop {flag}.")


def check_quant(target: Target, quant: str) -> None:
    """Raises: SlmkitError naming the target's quantizations."""
    target.spec.quant(quant)
