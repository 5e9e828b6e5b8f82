"""A numpy reference evaluator for a converted Core ML program, so parity runs where Core ML cannot.

Core ML prediction exists only on macOS. The `.mlpackage` itself, though, holds a MIL program that
coremltools can load back (milproto loader); walking its ops in order and evaluating each with the
op's own `value_inference()` reproduces what the program computes. A few ops have no usable
`value_inference()` on loaded programs (states, `shape` of flexible tensors, `silu`, `reduce_mean`'s
loaded `keep_dims`, the constexpr dequantization ops); those have numpy implementations here.

Arithmetic is float32. With `round_fp16=True`, every value the program declares fp16 is rounded
to fp16 after its op, as a device computing in fp16 would; with `round_fp16=False`, fp16 casts
are identities, which checks the conversion itself against PyTorch to float32 accuracy.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.coreml.lazy_weights import BlockwiseWeight, HalfWeight, LazyWeight

WEIGHTS_DIR = "Data/com.apple.CoreML/weights"
# Dequantized weights are held as float32 while all weights fit in max(their fp16 size, this
# limit); the rest stay fp16 and are widened only while their op runs. SmolLM2 / Gemma 3 270M are
# all float32; Gemma 3 1B half and half (3 GB).
DENSE_WEIGHTS_LIMIT = 3 * 1024**3
# Above this many bytes of fp16 weights, blockwise-quantized weights are not dequantized at load but
# kept as their integers (lazy_weights.BlockwiseWeight): Gemma 3 4B int4 holds 4.2 GB instead of
# 7.8 GB (its Core ML parity peaked at 13.6 GB with them at fp16; docs/scale.md).
HALF_WEIGHTS_LIMIT = 4 * 1024**3
LAZY_MIN_ELEMENTS = 1 << 16


def weights_memory(parameters: int, blockwise: bool) -> int:
    """Bytes the evaluator holds for `parameters` weights once loaded: int8 levels plus an fp16
    scale (and int8 offset) per block of 32 where blockwise-quantized weights stay integers, else
    fp16 widened to float32 within `DENSE_WEIGHTS_LIMIT`. `blockwise`: the program compresses its
    weights with `constexpr_blockwise_shift_scale` (int4, int8)."""
    if blockwise and 2 * parameters > HALF_WEIGHTS_LIMIT:
        return parameters + parameters * 3 // 32
    return max(2 * parameters, DENSE_WEIGHTS_LIMIT)


class UnsupportedOp(SlmkitError):
    pass


@contextlib.contextmanager
def quiet_coremltools() -> Iterator[None]:
    """coremltools logs warnings on import (untested torch / scikit-learn, no macOS runtime) and draws
    tqdm bars per conversion pass; none of it concerns a user, and slmkit shows its own progress."""
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    patched = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for module_name, attribute in _PROGRESS_BARS:
                module = importlib.import_module(module_name)
                patched.append((module, attribute, getattr(module, attribute)))
                setattr(module, attribute, functools.partial(patched[-1][2], disable=True))
            yield
    finally:
        for module, attribute, original in patched:
            setattr(module, attribute, original)
        logger.setLevel(level)


# Module-level tqdm references coremltools' PyTorch frontend and pass pipeline draw bars with.
_PROGRESS_BARS = (("coremltools.converters.mil.frontend.torch.ops", "_tqdm"),
                  ("coremltools.converters.mil.mil.passes.pass_pipeline", "tqdm"),
                  ("coremltools.optimize.coreml._quantization_passes", "tqdm"))


def load_program(package: Path) -> Any:
    """The package's MIL program (coremltools `Program`), read without compiling the model."""
    with quiet_coremltools():
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import load as milproto_load

        try:
            spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
        except Exception as exc:  # coremltools raises bare Exceptions for unreadable packages
            raise SlmkitError(f"{package} is not a readable Core ML package: {_first_line(exc)}",
                              hint="Convert it again with `slmkit convert --target coreml`.") from None
        if spec.WhichOneof("Type") != "mlProgram":
            raise SlmkitError(f"{package} holds a '{spec.WhichOneof('Type')}' model, not an ML program.",
                              hint="slmkit evaluates ML programs (iOS 15+) only.")
        try:
            return milproto_load(spec, spec.specificationVersion, file_weights_dir=str(package / WEIGHTS_DIR))
        except Exception as exc:  # a truncated weight file or protobuf surfaces as many error types
            raise SlmkitError(f"{package}: the ML program cannot be loaded: {_first_line(exc)}",
                              hint="The package is corrupt; convert it again.") from None


class MilEvaluator:
    """Runs a program's `main` like `MLModel.predict`, with states as `make_state()` gives them."""

    def __init__(self, package: Path, round_fp16: bool = True) -> None:
        with quiet_coremltools():
            from coremltools.converters.mil.mil import types

        self.types = types
        self.round_fp16 = round_fp16
        # op type -> outputs that overflowed fp16 (inf where float32 was finite): on a device
        # computing in fp16 these become inf/NaN.
        self.fp16_overflows: collections.Counter[str] = collections.Counter()
        self.state: dict[str, np.ndarray] = {}  # the state passed to the running predict()
        self.function = load_program(package).functions["main"]
        self.ops = list(self.function.operations)
        self.input_names = [name for name, var in self.function.inputs.items() if not types.is_state(var.sym_type)]
        self.state_shapes = {name: tuple(var.shape) for name, var in self.function.inputs.items()
                             if types.is_state(var.sym_type)}
        self.output_names = [var.name for var in self.function.outputs]
        self._check_supported()
        self._last_use = self._last_uses()
        self._index = {op: i for i, op in enumerate(self.ops)}
        self._lazy_weights: dict[str, LazyWeight] = {}  # var name -> weight widened per use
        self._prepare_constants()

    # -- public API (mirrors coremltools' MLModel on macOS) ------------------------------------
    def make_state(self) -> dict[str, np.ndarray]:
        return {name: np.zeros(shape, dtype=np.float32) for name, shape in self.state_shapes.items()}

    def predict(self, inputs: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Core ML's `predict(inputs, state)`: the program's outputs for `inputs`; each KV-cache entry of
        the `state` dict is replaced by its updated array (the dict is changed, the arrays it held are
        not written). Raises SlmkitError for a missing input or an op the evaluator lacks.
        """
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise SlmkitError(f"Missing model inputs: {', '.join(sorted(missing))}.")
        for name in self.input_names:
            self._bind(self.function.inputs[name], np.asarray(inputs[name]))
        self.state = state
        try:
            for index, op in enumerate(self.ops):
                if not _is_constant(op):
                    self._run(index, op)
            return {name: self._value(var) for name, var in zip(self.output_names, self.function.outputs)}
        finally:
            for var in self._transient_vars():
                var._sym_val = None

    # -- evaluation ------------------------------------------------------------------------------
    def _run(self, index: int, op: Any) -> None:
        handler = _NUMPY_OPS.get(op.op_type)
        # A weight kept narrow is float32 only while its op runs (linear and gather read it as is).
        lazy = [] if op.op_type in _READS_LAZY_WEIGHTS else [
            var for var in _input_vars(op) if var.name in self._lazy_weights]
        for var in lazy:
            self._bind(var, self._lazy_weights[var.name].dense().numpy())
        try:
            values = handler(self, index, op) if handler else op.value_inference()
        except SlmkitError:
            raise
        except Exception as exc:  # an op's value_inference can fail in many ways; name the op
            raise UnsupportedOp(f"Cannot evaluate Core ML op '{op.op_type}' ({op.name}): {_first_line(exc)}",
                                hint="Report the model and this op.") from None
        finally:
            for var in lazy:
                var._sym_val = None
        if not isinstance(values, (tuple, list)):
            values = (values,)
        inputs = [var._sym_val.val for var in _input_vars(op) if var._sym_val is not None]
        for var, value in zip(op.outputs, values):
            # An input passed through (a state read or stored, a cache slice written in place) holds
            # values rounded when they were produced: skip re-rounding a whole cache per layer.
            passed_through = any(value is array for array in (*inputs, *self.state.values()))
            self._bind(var, np.asarray(value), rounded=passed_through)
        for var in _input_vars(op):
            if self._last_use.get(var.name) == index and var.op is not None and not _is_constant(var.op):
                var._sym_val = None  # free intermediates as soon as nothing reads them

    def _bind(self, var: Any, value: np.ndarray, rounded: bool = False) -> None:
        """Store a concrete value (and its concrete type) on the var, where value_inference reads it."""
        types = self.types
        if value.dtype == np.float16:
            value = widen(value)
        elif value.dtype == np.float64:
            value = value.astype(np.float32)
        elif self.round_fp16 and not rounded and value.dtype == np.float32 and _declared_fp16(var, types):
            rounded_value = round_to_half(value)
            if value.size and not np.isfinite(rounded_value).all() and np.isfinite(value).all():
                self.fp16_overflows[var.op.op_type if var.op is not None else var.name] += 1
            value = rounded_value
        builtin = types.numpy_type_to_builtin_type(value.dtype)
        sym_type = types.tensor(builtin, value.shape) if value.ndim else builtin
        sym_val = sym_type()
        sym_val.val = value if value.ndim else value.dtype.type(value)
        var._sym_type, var._sym_val = sym_type, sym_val

    def _value(self, var: Any) -> np.ndarray:
        sym_val = var._sym_val
        if sym_val is None:
            raise SlmkitError(f"Core ML evaluator: '{var.name}' has no value (evaluation order broken).")
        return np.asarray(sym_val.val)

    def _prepare_constants(self) -> None:
        """Weights dequantized once (constexpr ops), not on every call: as float32 within
        `DENSE_WEIGHTS_LIMIT`, else fp16 weights stay fp16 and are widened per use (the values are
        the same: the device computes with fp16 weights too). Past `HALF_WEIGHTS_LIMIT` of fp16
        weights, blockwise-quantized ones stay integers, dequantized per use. The compressed data
        is released once nothing reads it."""
        keep_blockwise = _fp16_bytes(self.ops) > HALF_WEIGHTS_LIMIT
        dense: list[tuple[Any, np.ndarray]] = []
        for op in self.ops:
            if op.op_type == "const":
                value = op.outputs[0].val
                if isinstance(value, np.ndarray) and value.dtype == np.float16:
                    dense.append((op.outputs[0], value))
                    _release(op)
            elif op.op_type.startswith("constexpr_"):
                kept = BlockwiseWeight.from_op(op) if keep_blockwise and op.op_type == _BLOCKWISE else None
                if kept is not None:
                    self._lazy_weights[op.outputs[0].name] = kept
                else:
                    dense.extend((var, value) for var, value in zip(op.outputs, _dequantize(op)))
                for var in _input_vars(op):  # the compressed data: nothing reads it again
                    if var.op is not None and var.op.op_type == "const" and len(var.child_ops) == 1:
                        var._sym_val = None
                        _release(var.op)
        # Widen weights to float32 while all of them fit in max(their fp16 size, the limit).
        budget = max(sum(value.nbytes for _, value in dense), DENSE_WEIGHTS_LIMIT)
        used = sum(value.nbytes for _, value in dense)
        for var, value in dense:
            extra = value.size * 4 - value.nbytes
            if value.dtype == np.float16 and value.size >= LAZY_MIN_ELEMENTS and used + extra > budget:
                self._lazy_weights[var.name] = HalfWeight(value)
                var._sym_val = None
            else:
                used += extra
                self._bind(var, value)

    def _check_supported(self) -> None:
        """Fail before any work on an op that has neither a numpy handler nor a value_inference."""
        for op in self.ops:
            kind = op.op_type
            if kind in _NUMPY_OPS or _is_constant(op):
                continue
            if type(op).value_inference is _base_value_inference():
                raise UnsupportedOp(f"The Core ML evaluator cannot run op '{kind}' ({op.name}): it has no "
                                    "value_inference() and no numpy implementation.",
                                    hint="Report the model and this op; on macOS the real Core ML runtime runs it.")
        if op_blocks := [op.op_type for op in self.ops if op.blocks]:
            raise UnsupportedOp(f"The Core ML evaluator does not run control flow ({', '.join(sorted(set(op_blocks)))}).")

    def _last_uses(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for index, op in enumerate(self.ops):
            for var in _input_vars(op):
                last[var.name] = index
        for var in self.function.outputs:
            last[var.name] = len(self.ops)
        return last

    def _transient_vars(self) -> Iterator[Any]:
        for op in self.ops:
            if not _is_constant(op):
                yield from op.outputs
        yield from (self.function.inputs[name] for name in self.input_names)

    def _owns(self, var: Any, index: int, state_name: str | None) -> bool:
        """Whether op `index` may overwrite `var`'s array in place: the array is fresh or a state's
        buffer, and nothing can observe the old contents afterwards."""
        producer = var.op
        if producer is None or producer.op_type not in _FRESH_OR_STATE or self._last_use.get(var.name) != index:
            return False
        if producer.op_type == "coreml_update_state" and self._last_use.get(producer.value.name) != self._index[producer]:
            return False  # the value written to the state is still read elsewhere
        if state_name is None:
            return True
        # A state's buffer: only if this result is what gets stored, with no read of the state in between.
        store = self._state_store(self.ops[index], state_name)
        return store is not None and not any(
            op.op_type == "read_state" and op.inputs["input"].name == state_name for op in self.ops[index + 1:store])

    def _state_store(self, op: Any, state_name: str) -> int | None:
        """Index of the `coreml_update_state(state_name)` the op's result reaches directly or via casts."""
        for child in op.outputs[0].child_ops:
            if child.op_type == "coreml_update_state":
                return self._index[child] if child.state.name == state_name else None
            if child.op_type == "cast":
                return self._state_store(child, state_name)
        return None


_FRESH_OR_STATE = ("read_state", "coreml_update_state", "slice_update", "cast")


def _release(const_op: Any) -> None:
    """Drop a const op's own copy of its value (MIL keeps one in the op and one on its output)."""
    internal = getattr(const_op, "val", None)
    if internal is not None and hasattr(internal, "_sym_val"):
        internal._sym_val = None


_BLOCKWISE = "constexpr_blockwise_shift_scale"


def _fp16_bytes(ops: list[Any]) -> int:
    """Bytes the program's float weights take as fp16 (what Core ML materializes)."""
    total = 0
    for op in ops:
        if op.op_type == "const" or op.op_type.startswith("constexpr_"):
            for var in op.outputs:
                shape = var.shape
                if shape and all(isinstance(d, (int, np.integer)) for d in shape) and _is_float(var):
                    total += 2 * int(np.prod(shape))
    return total


def _is_float(var: Any) -> bool:
    from coremltools.converters.mil.mil import types

    return _primitive(var) in (types.fp16, types.fp32)


def _dequantize(op: Any) -> tuple[np.ndarray, ...]:
    try:
        values = op.materialized_val_inference()
    except Exception as exc:  # unknown compression layouts surface as assorted errors
        raise UnsupportedOp(f"Cannot dequantize Core ML op '{op.op_type}' ({op.name}): {_first_line(exc)}",
                            hint="Report the model and this op.") from None
    return tuple(np.asarray(value) for value in (values if isinstance(values, tuple) else (values,)))


def _is_constant(op: Any) -> bool:
    """Weights: evaluated once at load, never freed."""
    return op.op_type == "const" or op.op_type.startswith("constexpr_")


def _primitive(var: Any) -> Any:
    """The var's element type (coremltools `types.fp16`, `types.int32`, ...)."""
    from coremltools.converters.mil.mil import types

    sym_type = var.sym_type
    return sym_type.get_primitive() if types.is_tensor(sym_type) else sym_type


def _declared_fp16(var: Any, types: Any) -> bool:
    return _primitive(var) is types.fp16


def _input_vars(op: Any) -> Iterator[Any]:
    for value in op.inputs.values():
        if isinstance(value, (tuple, list)):
            yield from value
        else:
            yield value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _base_value_inference() -> Callable:
    from coremltools.converters.mil.mil.operation import Operation

    return Operation.value_inference


# -- numpy implementations for ops whose value_inference does not work on a loaded program ---------
def _silu(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    x = op.x.val
    return x / (1.0 + np.exp(-x))


def _reduction(reduce: Callable[..., np.ndarray]) -> Callable[[MilEvaluator, int, Any], np.ndarray]:
    """reduce_* ops: their value_inference cannot use a loaded `keep_dims` (a numpy bool)."""

    def run(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
        axes = None if op.axes is None else tuple(int(a) for a in op.axes.val)
        keep = bool(op.keep_dims.val) if op.keep_dims is not None else False
        return reduce(op.x.val, axis=axes, keepdims=keep)

    return run


def _shape(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    return np.array(op.x.val.shape, dtype=np.int32)


def _cast(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    target = op.dtype.val
    if target in ("fp16", "fp32"):
        return round_to_half(op.x.val) if target == "fp16" and ev.round_fp16 else op.x.val.astype(np.float32)
    return op.value_inference()


def _select(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    # value_inference takes its output type from `a` and `b` only: scalar branches with a tensor
    # condition (the attention mask) come out as a scalar.
    return np.where(op.cond.val, op.a.val, op.b.val)


def _tile(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    # GQA's key/value repeat computes `reps` with real_div, which MIL types as float.
    return np.tile(op.x.val, np.asarray(op.reps.val).astype(np.int64))


def _read_state(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    return ev.state[op.inputs["input"].name]


def _update_state(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    name, value = op.state.name, op.value.val
    if value.shape != ev.state[name].shape:
        raise SlmkitError(f"State '{name}' updated with shape {value.shape}, declared {ev.state[name].shape}.")
    ev.state[name] = value
    return value


def _slice_update(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    """The KV-cache write: in place when nothing reads the old array again (a full copy of the
    cache per layer would dominate decode time with a long cache)."""
    x = op.x
    state_name = next((name for name, array in ev.state.items() if array is x.val), None)
    if ev._owns(x, index, state_name) and (op.stride is None or np.all(op.stride.val == 1)):
        target = x.val
        window = _window(op, target.shape)
        target[window] = op.update.val.reshape(target[window].shape)
        return target
    return op.value_inference()


def _window(op: Any, shape: tuple[int, ...]) -> tuple[int | slice, ...]:
    """slice_update's region as numpy indices (a squeezed axis is a single index)."""
    rank = len(shape)

    def mask(name: str) -> np.ndarray:
        var = getattr(op, name)
        return np.zeros(rank, dtype=bool) if var is None else np.asarray(var.val, dtype=bool)

    begin, end = np.asarray(op.begin.val), np.asarray(op.end.val)
    begin_mask, end_mask, squeeze = mask("begin_mask"), mask("end_mask"), mask("squeeze_mask")
    window: list[int | slice] = []
    for axis in range(rank):
        start = 0 if begin_mask[axis] else int(begin[axis])
        if squeeze[axis]:
            window.append(start)
        else:
            window.append(slice(start, None if end_mask[axis] else int(end[axis])))
    return tuple(window)


def widen(half: np.ndarray) -> np.ndarray:
    """fp16 -> float32 (torch's vectorized, threaded conversion; numpy's is 5-10x slower)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(half)).float().numpy()


def round_to_half(value: np.ndarray) -> np.ndarray:
    """float32 rounded to fp16 values (kept as float32), as a device computing in fp16 stores them."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).half().float().numpy()


def _weight(ev: MilEvaluator, var: Any) -> Any:
    """A weight input as a float32 torch tensor (widened here when kept narrow)."""
    import torch

    lazy = ev._lazy_weights.get(var.name)
    return torch.from_numpy(var.val) if lazy is None else lazy.dense()


# Output rows of a narrow weight widened to float32 at once by `_linear`: without blocks, Gemma 3
# 4B's 262K-row output projection alone needs a 2.7 GB float32 copy per call (4B Core ML parity
# peaked at 14.4 GB; docs/scale.md).
LINEAR_BLOCK_ELEMENTS = 1 << 24


def _linear(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    import torch

    bias = None if op.bias is None else _weight(ev, op.bias).float()
    x = torch.from_numpy(np.ascontiguousarray(op.x.val, dtype=np.float32))
    lazy = ev._lazy_weights.get(op.weight.name)
    if lazy is None or lazy.size <= LINEAR_BLOCK_ELEMENTS:
        return torch.nn.functional.linear(x, _weight(ev, op.weight), bias).numpy()
    out_rows, in_columns = lazy.shape
    rows = max(1, LINEAR_BLOCK_ELEMENTS // in_columns)
    out = torch.empty(*x.shape[:-1], out_rows, dtype=torch.float32)
    for start in range(0, out_rows, rows):
        out[..., start:start + rows] = torch.nn.functional.linear(x, lazy.rows(start, start + rows))
    return (out if bias is None else out + bias).numpy()


def _gather(ev: MilEvaluator, index: int, op: Any) -> np.ndarray:
    lazy = ev._lazy_weights.get(op.x.name)
    if lazy is None:
        return op.value_inference()
    indices = np.asarray(op.indices.val, dtype=np.int64)
    if int(op.axis.val) == 0:
        return lazy.take(indices)  # only the rows asked for
    return np.take(lazy.dense().numpy(), indices, axis=int(op.axis.val))


# Ops that read a weight kept narrow directly (the rest get it widened for their run).
_READS_LAZY_WEIGHTS = ("linear", "gather")

_NUMPY_OPS: dict[str, Callable[[MilEvaluator, int, Any], np.ndarray]] = {
    "linear": _linear,
    "gather": _gather,
    "silu": _silu,
    "reduce_mean": _reduction(np.mean),
    "reduce_sum": _reduction(np.sum),
    "reduce_max": _reduction(np.max),
    "reduce_min": _reduction(np.min),
    "shape": _shape,
    "cast": _cast,
    "select": _select,
    "tile": _tile,
    "read_state": _read_state,
    "coreml_update_state": _update_state,
    "slice_update": _slice_update,
}
