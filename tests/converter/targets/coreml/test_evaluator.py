"""The numpy MIL evaluator, op by op, on programs written with coremltools' builder and loaded back
from a saved .mlpackage (the path parity takes), against results computed here with numpy."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.coreml.evaluator import MilEvaluator, UnsupportedOp, quiet_coremltools

with quiet_coremltools():
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 4)).astype(np.float32)
Y = (RNG.random(size=(2, 3, 4)) + 0.5).astype(np.float32)
W = RNG.normal(size=(5, 4)).astype(np.float32)
B = RNG.normal(size=(5,)).astype(np.float32)
IDS = np.array([[3, 0, 4]], dtype=np.int32)
N = np.array([6], dtype=np.int32)
STATE_SHAPE = (2, 1, 8, 4)

# op name -> (MIL builder over the inputs, numpy reference over the same arrays)
CASES: dict[str, tuple[Callable, Callable]] = {
    "add": (lambda i: mb.add(x=i["x"], y=i["y"]), lambda: X + Y),
    "sub": (lambda i: mb.sub(x=i["x"], y=i["y"]), lambda: X - Y),
    "mul": (lambda i: mb.mul(x=i["x"], y=i["y"]), lambda: X * Y),
    "real_div": (lambda i: mb.real_div(x=i["x"], y=i["y"]), lambda: X / Y),
    "pow": (lambda i: mb.pow(x=i["y"], y=2.0), lambda: Y ** 2),
    "rsqrt": (lambda i: mb.rsqrt(x=i["y"], epsilon=1e-6), lambda: 1 / np.sqrt(Y + 1e-6)),
    "sin": (lambda i: mb.sin(x=i["x"]), lambda: np.sin(X)),
    "cos": (lambda i: mb.cos(x=i["x"]), lambda: np.cos(X)),
    "silu": (lambda i: mb.silu(x=i["x"]), lambda: X / (1 + np.exp(-X))),
    "gelu": (lambda i: mb.gelu(x=i["x"], mode="TANH_APPROXIMATION"),
             lambda: 0.5 * X * (1 + np.tanh(math.sqrt(2 / math.pi) * (X + 0.044715 * X ** 3)))),
    "softmax": (lambda i: mb.softmax(x=i["x"], axis=-1),
                lambda: np.exp(X) / np.exp(X).sum(-1, keepdims=True)),
    "reduce_mean": (lambda i: mb.reduce_mean(x=i["x"], axes=[-1], keep_dims=True), lambda: X.mean(-1, keepdims=True)),
    "reduce_max": (lambda i: mb.reduce_max(x=i["x"], axes=[-1], keep_dims=True), lambda: X.max(-1, keepdims=True)),
    "abs": (lambda i: mb.abs(x=i["x"]), lambda: np.abs(X)),
    "maximum": (lambda i: mb.maximum(x=i["x"], y=0.25), lambda: np.maximum(X, 0.25)),
    "less": (lambda i: mb.less(x=i["x"], y=0.0), lambda: X < 0),
    "tanh": (lambda i: mb.tanh(x=i["x"]), lambda: np.tanh(X)),
    "matmul": (lambda i: mb.matmul(x=i["x"], y=i["y"], transpose_y=True), lambda: X @ Y.transpose(0, 2, 1)),
    "linear": (lambda i: mb.linear(x=i["x"], weight=W, bias=B), lambda: X @ W.T + B),
    "transpose": (lambda i: mb.transpose(x=i["x"], perm=[0, 2, 1]), lambda: X.transpose(0, 2, 1)),
    "reshape": (lambda i: mb.reshape(x=i["x"], shape=[2, 12]), lambda: X.reshape(2, 12)),
    "expand_dims": (lambda i: mb.expand_dims(x=i["x"], axes=[1]), lambda: X[:, None]),
    "concat": (lambda i: mb.concat(values=[i["x"], i["y"]], axis=1), lambda: np.concatenate([X, Y], 1)),
    "tile": (lambda i: mb.tile(x=i["x"], reps=[1, 2, 1]), lambda: np.tile(X, (1, 2, 1))),
    "slice_by_index": (lambda i: mb.slice_by_index(x=i["x"], begin=[0, 1, 0], end=[2, 3, 4]), lambda: X[:, 1:3]),
    "gather": (lambda i: mb.gather(x=W, indices=i["ids"], axis=0), lambda: W[IDS]),
    "shape": (lambda i: mb.shape(x=i["x"]), lambda: np.array(X.shape)),
    "range_1d": (lambda i: mb.range_1d(start=0, end=mb.squeeze(x=i["n"]), step=1), lambda: np.arange(6)),
    "equal": (lambda i: mb.equal(x=i["ids"], y=3), lambda: IDS == 3),
    "greater": (lambda i: mb.greater(x=i["x"], y=0.0), lambda: X > 0),
    "greater_equal": (lambda i: mb.greater_equal(x=i["x"], y=0.0), lambda: X >= 0),
    "less_equal": (lambda i: mb.less_equal(x=i["x"], y=0.0), lambda: X <= 0),
    "logical_and": (lambda i: mb.logical_and(x=mb.greater(x=i["x"], y=0.0), y=mb.less_equal(x=i["y"], y=1.0)),
                    lambda: (X > 0) & (Y <= 1.0)),
    # A tensor condition with scalar branches: value_inference alone returns a scalar here.
    "select": (lambda i: mb.select(cond=mb.greater(x=i["x"], y=0.0), a=0.0, b=-1e4), lambda: np.where(X > 0, 0.0, -1e4)),
    "cast": (lambda i: mb.cast(x=i["ids"], dtype="fp32"), lambda: IDS.astype(np.float32)),
}


def _save(program, path: Path, fp16: bool = False) -> Path:
    with quiet_coremltools():
        model = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                           compute_precision=ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32,
                           pass_pipeline=ct.PassPipeline.EMPTY, skip_model_load=True)
        model.save(str(path))
    return path


@pytest.fixture(scope="module")
def op_program(tmp_path_factory: pytest.TempPathFactory) -> MilEvaluator:
    """One program whose outputs are every case, each named after its op (one conversion for all)."""
    specs = [mb.TensorSpec((2, 3, 4), dtype=types.fp32), mb.TensorSpec((2, 3, 4), dtype=types.fp32),
             mb.TensorSpec((1, 3), dtype=types.int32), mb.TensorSpec((1,), dtype=types.int32)]

    @mb.program(input_specs=specs, opset_version=ct.target.iOS18)
    def program(x, y, ids, n):
        inputs = {"x": x, "y": y, "ids": ids, "n": n}
        return tuple(mb.identity(x=build(inputs), name=name) for name, (build, _) in CASES.items())

    path = _save(program, tmp_path_factory.mktemp("mil") / "ops.mlpackage")
    return MilEvaluator(path, round_fp16=False)


@pytest.fixture(scope="module")
def op_outputs(op_program: MilEvaluator) -> dict[str, np.ndarray]:
    return op_program.predict({"x": X, "y": Y, "ids": IDS, "n": N}, op_program.make_state())


@pytest.mark.parametrize("op", list(CASES))
def test_op_matches_numpy(op: str, op_program: MilEvaluator, op_outputs: dict[str, np.ndarray]) -> None:
    assert op in {o.op_type for o in op_program.ops}, f"the program lost its {op} op"
    expected = np.asarray(CASES[op][1]())
    got = op_outputs[op]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=1e-5, atol=1e-5)


def test_states_persist_across_calls_and_update_in_place(tmp_path: Path) -> None:
    """The KV-cache pattern: read the state, write a slice, store it; the next call sees it."""

    @mb.program(input_specs=[mb.TensorSpec((1, 1, 2, 4), dtype=types.fp16), mb.TensorSpec((1,), dtype=types.int32),
                             mb.StateTensorSpec(STATE_SHAPE, dtype=types.fp16)], opset_version=ct.target.iOS18)
    def program(update, start, cache):
        old = mb.read_state(input=cache)
        begin = mb.concat(values=[[0, 0], start, [0]], axis=0)
        end = mb.concat(values=[[1, 1], mb.add(x=start, y=2), [4]], axis=0)
        new = mb.slice_update(x=old, update=update, begin=begin, end=end)
        mb.coreml_update_state(state=cache, value=new)
        return mb.reduce_sum(x=mb.cast(x=mb.read_state(input=cache), dtype="fp32"), axes=[0, 1, 3], name="per_slot")

    evaluator = MilEvaluator(_save(program, tmp_path / "state.mlpackage", fp16=True))
    state = evaluator.make_state()
    first = evaluator.predict({"update": np.ones((1, 1, 2, 4), np.float16), "start": np.array([0], np.int32)}, state)
    second = evaluator.predict({"update": np.full((1, 1, 2, 4), 2, np.float16), "start": np.array([3], np.int32)}, state)
    np.testing.assert_array_equal(first["per_slot"], [4, 4, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(second["per_slot"], [4, 4, 0, 8, 8, 0, 0, 0])
    assert state["cache"].shape == STATE_SHAPE and state["cache"][0, 0, 3, 0] == 2
    fresh = evaluator.make_state()
    assert not fresh["cache"].any(), "make_state() must start from zeros"


def test_fp16_rounding_is_optional(tmp_path: Path) -> None:
    @mb.program(input_specs=[mb.TensorSpec((3,), dtype=types.fp32)], opset_version=ct.target.iOS18)
    def program(x):
        return mb.cast(x=mb.add(x=mb.cast(x=x, dtype="fp16"), y=np.float16(0)), dtype="fp32", name="out")

    path = _save(program, tmp_path / "round.mlpackage")
    x = np.array([1.0001, 3.14159265, 1e-8], dtype=np.float32)
    rounded = MilEvaluator(path, round_fp16=True).predict({"x": x}, {})["out"]
    exact = MilEvaluator(path, round_fp16=False).predict({"x": x}, {})["out"]
    np.testing.assert_array_equal(rounded, x.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(exact, x)


def _compressed_linear(tmp_path: Path, weight: np.ndarray, quant: str) -> tuple[MilEvaluator, dict]:
    """A one-op program whose weight went through slmkit's per-weight compressor (as the builder does)."""
    from slmkit.converter.targets.coreml.quantize import WeightCompressor

    compressor = WeightCompressor(quant, block_size=32)

    @mb.program(input_specs=[mb.TensorSpec((2, weight.shape[1]), dtype=types.fp32)], opset_version=ct.target.iOS18)
    def program(x):
        w = compressor.constant(weight.astype(np.float16), "w", "q")
        return mb.cast(x=mb.linear(x=mb.cast(x=x, dtype="fp16"), weight=w), dtype="fp32", name="out")

    path = _save(program, tmp_path / f"{quant}.mlpackage")
    return MilEvaluator(path, round_fp16=False), compressor.describe()


def _load_op(package: Path, op_type: str):
    from slmkit.converter.targets.coreml.evaluator import load_program

    return next(op for op in load_program(package).functions["main"].operations if op.op_type == op_type)


def _stored(package: Path, op_type: str) -> dict[str, np.ndarray]:
    """A compressed op's inputs as the package stores them (the evaluator releases them once dequantized)."""
    return {name: np.asarray(var.val) for name, var in _load_op(package, op_type).inputs.items()}


def test_constexpr_blockwise_shift_scale_dequantizes_per_block(tmp_path: Path) -> None:
    weight = RNG.normal(size=(64, 96)).astype(np.float32)
    evaluator, details = _compressed_linear(tmp_path, weight, "int4")
    assert details["compressed_ops"] == {"constexpr_blockwise_shift_scale": 1}
    stored = _stored(tmp_path / "int4.mlpackage", "constexpr_blockwise_shift_scale")
    data, scale = stored["data"].astype(np.float32), stored["scale"].astype(np.float32)
    assert scale.shape == (64, 3), "one scale per 32 input columns"
    offset = stored.get("offset", np.zeros_like(scale)).astype(np.float32)
    dense = (data - np.repeat(offset, 32, axis=1)) * np.repeat(scale, 32, axis=1)
    x = RNG.normal(size=(2, 96)).astype(np.float32)
    got = evaluator.predict({"x": x}, {})["out"]
    # The op's output is an fp16 weight (as Core ML materializes it), so the reference rounds there too.
    np.testing.assert_allclose(got, x @ dense.astype(np.float16).astype(np.float32).T, rtol=1e-5, atol=1e-4)
    assert np.abs(dense - weight).max() < 0.1 * np.abs(weight).max(), "4-bit blocks should stay near the weights"


def test_constexpr_lut_to_dense_uses_16_values_per_group(tmp_path: Path) -> None:
    from slmkit.converter.targets.coreml.quantize import PALETTE_GROUP

    weight = RNG.normal(size=(64, 64)).astype(np.float32)
    evaluator, details = _compressed_linear(tmp_path, weight, "palettize4")
    assert details["compressed_ops"] == {"constexpr_lut_to_dense": 1}
    stored = _stored(tmp_path / "palettize4.mlpackage", "constexpr_lut_to_dense")
    lut, indices = stored["lut"].astype(np.float32), stored["indices"].astype(np.int64)
    dense = np.concatenate([lut[g, 0, :, 0][indices[g * PALETTE_GROUP:(g + 1) * PALETTE_GROUP]]
                            for g in range(64 // PALETTE_GROUP)])
    x = RNG.normal(size=(2, 64)).astype(np.float32)
    np.testing.assert_allclose(evaluator.predict({"x": x}, {})["out"], x @ dense.T, rtol=1e-5, atol=1e-4)
    for group in np.split(dense, 64 // PALETTE_GROUP):
        assert len(np.unique(group)) <= 16


def test_table_compressed_in_row_blocks_equals_whole(tmp_path: Path) -> None:
    """The token table is compressed block by block: the same constants as in one piece."""
    from slmkit.converter.targets.coreml.quantize import WeightCompressor

    table = RNG.normal(size=(96, 64)).astype(np.float16)
    for quant in ("int4", "int8", "palettize4"):
        whole, blocks = WeightCompressor(quant, 32), WeightCompressor(quant, 32)

        @mb.program(input_specs=[mb.TensorSpec((1,), dtype=types.int32)], opset_version=ct.target.iOS18)
        def program(i):
            a = whole.constant(table, "a", "table")  # noqa: B023 (traced at once, inside this iteration)
            b = blocks.constant(iter([table[:32], table[32:64], table[64:]]), "b", "table")  # noqa: B023
            return mb.gather(x=a, indices=i, name="a_out"), mb.gather(x=b, indices=i, name="b_out")

        evaluator = MilEvaluator(_save(program, tmp_path / f"{quant}-table.mlpackage"), round_fp16=False)
        for row in (0, 40, 95):
            out = evaluator.predict({"i": np.array([row], np.int32)}, {})
            np.testing.assert_array_equal(out["a_out"], out["b_out"])


def test_weights_kept_at_fp16_give_the_same_logits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the dense budget, weights stay fp16 and are widened per op: same values, same results."""
    from slmkit.converter.targets.coreml import evaluator as module

    weight = RNG.normal(size=(512, 256)).astype(np.float32)
    x = RNG.normal(size=(2, 256)).astype(np.float32)
    dense, _ = _compressed_linear(tmp_path, weight, "int8")
    monkeypatch.setattr(module, "DENSE_WEIGHTS_LIMIT", 0)
    lazy = MilEvaluator(tmp_path / "int8.mlpackage", round_fp16=False)
    assert lazy._lazy_weights and not dense._lazy_weights
    np.testing.assert_array_equal(lazy.predict({"x": x}, {})["out"], dense.predict({"x": x}, {})["out"])


@pytest.mark.parametrize(("quant", "role"), [("int4", "q"), ("int8", "q"), ("int4", "table")])
def test_blockwise_weights_kept_as_integers_are_the_materialized_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quant: str, role: str) -> None:
    """Past the fp16 budget a blockwise-quantized weight stays int8 levels + fp16 scales: its values,
    rows and gathered rows equal coremltools' own decompression bit for bit."""
    from slmkit.converter.targets.coreml import evaluator as module
    from slmkit.converter.targets.coreml.lazy_weights import BlockwiseWeight
    from slmkit.converter.targets.coreml.quantize import WeightCompressor

    weight = (RNG.normal(size=(80, 96)) * 0.05).astype(np.float16)
    compressor = WeightCompressor(quant, block_size=32)

    @mb.program(input_specs=[mb.TensorSpec((2, 96), dtype=types.fp32), mb.TensorSpec((1, 3), dtype=types.int32)],
                opset_version=ct.target.iOS18)
    def program(x, ids):
        w = compressor.constant(weight, "w", role)
        out = mb.cast(x=mb.linear(x=mb.cast(x=x, dtype="fp16"), weight=w), dtype="fp32", name="out")
        return out, mb.cast(x=mb.gather(x=w, indices=ids, axis=0), dtype="fp32", name="rows")

    package = _save(program, tmp_path / f"{quant}-{role}.mlpackage", fp16=True)
    expected = _load_op(package, "constexpr_blockwise_shift_scale").materialized_val_inference()
    inputs = {"x": RNG.normal(size=(2, 96)).astype(np.float32), "ids": np.array([[0, 79, 41]], np.int32)}
    dense = MilEvaluator(package)
    monkeypatch.setattr(module, "HALF_WEIGHTS_LIMIT", 0)
    monkeypatch.setattr(module, "LINEAR_BLOCK_ELEMENTS", 96 * 7)  # rows in blocks of 7, the last one short
    kept = MilEvaluator(package)
    (lazy,) = kept._lazy_weights.values()
    assert isinstance(lazy, BlockwiseWeight) and lazy.levels.dtype.itemsize == 1
    np.testing.assert_array_equal(lazy.dense().numpy(), expected.astype(np.float32))
    np.testing.assert_array_equal(lazy.rows(5, 12).numpy(), expected[5:12].astype(np.float32))
    got, want = kept.predict(inputs, {}), dense.predict(inputs, {})
    np.testing.assert_array_equal(got["rows"], want["rows"])
    np.testing.assert_allclose(got["out"], want["out"], rtol=1e-3, atol=1e-3)  # fp16 rounding of sums in other order



def test_an_op_without_evaluation_is_named(tmp_path: Path) -> None:
    @mb.program(input_specs=[mb.TensorSpec((1, 2, 4), dtype=types.fp32)], opset_version=ct.target.iOS18)
    def program(x):
        # No value_inference in coremltools, no numpy implementation here: refused before any work.
        return mb.instance_norm(x=x, name="out")

    with pytest.raises(UnsupportedOp, match="'instance_norm'"):
        MilEvaluator(_save(program, tmp_path / "erf.mlpackage"))


def test_missing_input_and_corrupt_package(tmp_path: Path, op_program: MilEvaluator) -> None:
    with pytest.raises(SlmkitError, match="Missing model inputs: n"):
        op_program.predict({"x": X, "y": Y, "ids": IDS}, {})
    broken = tmp_path / "broken.mlpackage"
    broken.mkdir()
    (broken / "Manifest.json").write_text("{not json")
    with pytest.raises(SlmkitError, match="not a readable Core ML package"):
        MilEvaluator(broken)
