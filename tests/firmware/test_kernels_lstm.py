"""UNIDIRECTIONAL_SEQUENCE_LSTM (int8 with int16 cell state, and float32) against
tflite-micro, over a stream of inferences.

Why: an LSTM keyword spotter chains hundreds of fixed-point steps (four int8 FCs
per gate pair, the int16 sigmoid/tanh tables, three rescaling multiplies, a
saturating cell update) and carries hidden and cell state across inferences, so
one wrong rounding or a state that starts at 0 instead of its zero point shows
up only some steps later. Each random case (int8 and 16x8, batch- and time-major, 1-3 batches,
cell clipping on/off, power-of-two and rounded cell
scales, non-zero weight zero points, int8 hidden zero points) runs several
inferences through one firmware image and one interpreter and compares every
step: int8 bit for bit, float32 within a ULP bound (TFLM's std::tanh is glibc's,
the runtime's tanhf is within 1 ULP of it, and the recurrence carries that on).
Host build and emulated M0+/M4/M7 (reference) and M4/M7 (optimized, DSP).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    WARNING_TARGETS,
    Runner,
    assert_kernels_compile_warning_free,
    named_runner_fixture,
    ulp_distance,
)

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware.codegen import generate
from tinymeter.models.builders import int8_tensor, single_op_model_ir, tensor
from tinymeter.models.tflite import Model, TensorType, parse_tflite, serialize_tflite

pytest.importorskip("tflite_micro")

F32, I16, I32, I64 = TensorType.FLOAT32, TensorType.INT16, TensorType.INT32, TensorType.INT64
N_HOST = 16
#: The optimized runners exercise the DSP (SMLAD) gate FCs of the int8 kernel.
RUNNERS = ["host", "emu-m0plus-ref", "emu-m4-ref", "emu-m7-ref", "emu-m4-opt", "emu-m7-opt"]
STEPS = 3
#: float32 bound: relative to the output magnitude, in ULP of the largest output.
MAX_F32_ULP = 64


runner = named_runner_fixture(RUNNERS)


def stateful(model: Model, names: tuple[str, ...]) -> bytes:
    """Mark the named tensors variable and take them out of the graph inputs."""
    sg = model.main
    idx = [i for i, t in enumerate(sg.tensors) if t.name in names]
    tensors = list(sg.tensors)
    for i in idx:
        tensors[i] = dataclasses.replace(tensors[i], is_variable=True)
    sg = dataclasses.replace(sg, tensors=tuple(tensors),
                             inputs=tuple(i for i in sg.inputs if i not in idx))
    return serialize_tflite(dataclasses.replace(model, subgraphs=(sg,)))


def _s(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.float32(10.0 ** rng.uniform(lo, hi)))


def lstm_case(seed: int, units: int | None = None, n_inputs: int | None = None,
              input_scale_factor: float = 1.0) -> tuple[bytes, tuple[int, ...], bool, dict]:
    """A random single-op LSTM: (blob, input shape, is_float, description); int8,
    16x8 (seeds 2, 5 mod 4/8) or float32 (seeds 3 mod 4)."""
    rng = np.random.default_rng(150_000 + seed)
    batch, time = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    n_in, n = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    n_in, n = n_inputs or n_in, units or n
    time_major = bool(seed % 2)
    is_float = seed % 4 == 3
    act16 = seed % 4 == 2 or seed % 8 == 5
    clip = float(rng.choice([0.0, 0.0, 1.5, 6.0]))
    xshape = (time, batch, n_in) if time_major else (batch, time, n_in)
    yshape = (*xshape[:2], n)
    desc = {"seed": seed, "batch": batch, "time": time, "n_in": n_in, "units": n,
            "time_major": time_major, "float": is_float, "act16": act16, "clip": clip}
    if is_float:
        x = tensor("x", xshape, F32)
        w_in = [tensor(f"wi{g}", (n, n_in), F32,
                       data=(rng.standard_normal((n, n_in)) * 0.6).astype(np.float32))
                for g in range(4)]
        w_rec = [tensor(f"wr{g}", (n, n), F32,
                        data=(rng.standard_normal((n, n)) * 0.6).astype(np.float32))
                 for g in range(4)]
        bias = [tensor(f"b{g}", (n,), F32, data=(rng.standard_normal(n) * 0.3).astype(np.float32))
                for g in range(4)]
        h = tensor("h", (batch, n), F32)
        c = tensor("c", (batch, n), F32)
        y = tensor("y", yshape, F32)
    else:
        if act16:  # TFLM's 16x8 LSTM: int16 activations (symmetric), int64 biases
            s_x, z_x, s_h, z_h = _s(rng, -4, -3), 0, _s(rng, -4.6, -4.2), 0
        else:
            s_x, z_x = _s(rng, -2.5, -1) * input_scale_factor, int(rng.integers(-40, 40))
            s_h = _s(rng, -2.7, -2)
            z_h = int(rng.integers(-30, 30)) if seed % 3 else 0
        w_zp = int(rng.integers(-3, 4)) if seed % 7 == 5 else 0
        x = tensor("x", xshape, I16 if act16 else TensorType.INT8, scale=s_x, zero_point=z_x)
        w_in = [int8_tensor(f"wi{g}", (n, n_in), _s(rng, -2.5, -1.5), w_zp,
                            data=rng.integers(-127, 128, (n, n_in)).astype(np.int8))
                for g in range(4)]
        w_rec = [int8_tensor(f"wr{g}", (n, n), _s(rng, -2.5, -1.5), w_zp,
                             data=rng.integers(-127, 128, (n, n)).astype(np.int8))
                 for g in range(4)]
        b_hi = 1 << 22 if act16 else 3000
        bias = [tensor(f"b{g}", (n,), I64 if act16 else I32,
                       scale=float(np.float32(s_x) * w_in[g].quantization.scale[0]),
                       zero_point=0, data=rng.integers(-b_hi, b_hi, n))
                for g in range(4)]
        h = tensor("h", (batch, n), I16 if act16 else TensorType.INT8, scale=s_h, zero_point=z_h)
        cell_scale = 2.0 ** -int(rng.integers(8, 14))
        if seed % 6 == 1:
            cell_scale *= 1.3  # not a power of two: TFLM rounds its log2
        c = tensor("c", (batch, n), I16, scale=cell_scale, zero_point=0)
        y = tensor("y", yshape, I16 if act16 else TensorType.INT8, scale=s_h, zero_point=z_h)
        desc |= {"cell_scale": cell_scale, "hidden_zp": z_h, "w_zp": w_zp}
    inputs = [x, *w_in, *w_rec, None, None, None, *bias, None, None, h, c,
              None, None, None, None]
    model = single_op_model_ir("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [y],
                               {"fused_activation_function": "TANH", "cell_clip": clip,
                                "time_major": time_major})
    return stateful(model, ("h", "c")), xshape, is_float, desc


def _stream(shape: tuple[int, ...], is_float: bool, seed: int,
            dtype: type = np.int8) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    if is_float:
        return [[(rng.standard_normal(shape) * 1.5).astype(np.float32)] for _ in range(STEPS)]
    info = np.iinfo(dtype)
    out = [[rng.integers(info.min, info.max + 1, shape).astype(dtype)] for _ in range(STEPS - 1)]
    return [*out, [np.full(shape, info.max, dtype)]]


def tflm_stream(blob: bytes, inputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Outputs of one tflite-micro interpreter fed *inputs* in turn (state carries over)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(blob, arena_size=1 << 16)
    out = []
    for (x,) in inputs:
        interp.set_input(x, 0)
        interp.invoke()
        out.append(np.array(interp.get_output(0)))
    return out


def assert_stream_matches(got: list[list[np.ndarray]], want: list[np.ndarray], is_float: bool,
                          desc: dict) -> None:
    for step, (g, w) in enumerate(zip(got, want)):
        assert g[0].dtype == w.dtype and g[0].shape == w.shape, (step, desc)
        if not is_float:
            assert g[0].tobytes() == w.tobytes(), (step, g[0], w, desc)
            continue
        # relative bound: ULP of each output measured against the largest output
        scale = float(np.abs(w).max()) or 1.0
        err = np.abs(g[0].astype(np.float64) - w) / (np.spacing(np.float32(scale)))
        assert err.max() <= MAX_F32_ULP, (step, float(err.max()), desc)


@pytest.mark.parametrize("seed", range(N_HOST))
def test_lstm_stream_matches_tflm(runner: tuple[str, Runner], seed: int) -> None:
    name, run = runner
    if name != "host" and seed >= 4:
        pytest.skip("emulated runners take the first cases only")
    blob, shape, is_float, desc = lstm_case(seed)
    inputs = _stream(shape, is_float, seed, np.int16 if desc["act16"] else np.int8)
    assert_stream_matches(run(blob, inputs), tflm_stream(blob, inputs), is_float, desc)


@pytest.mark.slow
@pytest.mark.parametrize("board", ["nucleo-l4r5zi", "nucleo-f767zi"])
def test_optimized_kernel_paths(board: str) -> None:
    """The DSP kernel's four-row blocks with row and depth tails, and both
    requantization forms (a large input scale makes the input FC's shift positive)."""
    import shutil

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    from tinymeter.device import run_on_emulator
    from tinymeter.firmware.codegen import generate

    blob, shape, _, desc = lstm_case(0, units=11, n_inputs=13, input_scale_factor=60.0)
    params = generate(parse_tflite(blob)).layers[0].params
    in_shift, rec_shift = params["in_shift"], params["rec_shift"]
    assert isinstance(in_shift, list) and isinstance(rec_shift, list)
    assert min(in_shift) >= 0 and max(rec_shift) < 0, (in_shift, rec_shift)
    inputs = _stream(shape, False, 1)
    got = run_on_emulator(blob, inputs, board=board, kernels="optimized")
    assert_stream_matches(got, tflm_stream(blob, inputs), False, desc)


def test_float_stream_mostly_bit_exact() -> None:
    """The float bound is loose for the recurrence's sake; most outputs are exact."""
    from tinymeter.firmware.host import run_on_host

    exact = total = 0
    for seed in (3, 7, 11, 15):
        blob, shape, is_float, _ = lstm_case(seed)
        assert is_float
        inputs = _stream(shape, True, seed)
        for g, w in zip(run_on_host(blob, inputs), tflm_stream(blob, inputs)):
            d = ulp_distance(g[0], w)
            exact += int((d == 0).sum())
            total += d.size
    assert exact >= 0.5 * total, (exact, total)


def _with(blob: bytes, **changes: object) -> Model:
    model = parse_tflite(blob)
    op = dataclasses.replace(model.main.operators[0], **changes)
    return dataclasses.replace(model, subgraphs=(dataclasses.replace(model.main, operators=(op,)),))


def test_rejects_peephole_and_missing_gate() -> None:
    blob, _, _, _ = lstm_case(0)
    model = parse_tflite(blob)
    ins = list(model.main.operators[0].inputs)
    peephole = ins.copy()
    peephole[9] = ins[13]  # any tensor in a peephole slot
    with pytest.raises(UnsupportedModelError, match="peephole"):
        generate(_with(blob, inputs=tuple(peephole)))
    cifg = ins.copy()
    cifg[1] = -1
    with pytest.raises(UnsupportedModelError, match="missing"):
        generate(_with(blob, inputs=tuple(cifg)))


def test_while_loop_model_names_the_way_out() -> None:
    """A Keras 3 LSTM converts to WHILE + subgraphs: the error says to use tf_keras."""
    from tinymeter.firmware.support import op_support

    model = parse_tflite(lstm_case(0)[0])
    op = dataclasses.replace(model.main.operators[0], opcode="WHILE", options={})
    main = dataclasses.replace(model.main, operators=(op,))
    looped = dataclasses.replace(model, subgraphs=(main, model.main))
    with pytest.raises(UnsupportedModelError, match="tf_keras"):
        generate(looped)
    assert "tf_keras" in op_support(looped)[0].reason


def test_state_must_be_variable() -> None:
    blob, _, _, _ = lstm_case(0)
    model = parse_tflite(blob)
    tensors = [dataclasses.replace(t, is_variable=False) if t.name == "c" else t
               for t in model.main.tensors]
    bad = dataclasses.replace(model, subgraphs=(dataclasses.replace(model.main,
                                                                    tensors=tuple(tensors)),))
    with pytest.raises(UnsupportedModelError, match="variable"):
        generate(bad)


def test_scratch_extends_the_arena() -> None:
    blob, _, _, desc = lstm_case(0)
    gen = generate(parse_tflite(blob))
    assert "tm_lstm_s8" in gen.source and "lstm0_ready" in gen.source
    assert gen.layers[0].macs == desc["batch"] * desc["time"] * 4 * desc["units"] * (
        desc["n_in"] + desc["units"])


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("lstm.c",))
