"""``tinymeter validate``: the firmware's outputs against the host reference interpreters.

The emulated firmware (tinymeter's runtime or a TFLM library) runs the model on given
inputs (``.npz``/``.npy``) or seeded random ones; every output is compared with the
host ``tflite-micro`` interpreter (bit-exact reference: the same kernels TFLM runs on
the device) and, for float models, with TensorFlow's ``tf.lite.Interpreter``.  Per
output: max abs difference, mismatching elements, top-1 agreement.  What ``stedgeai
validate`` gives ST users.

Comparison and formatting are pure; running the references and the emulator is I/O.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinymeter.apps.tflm import build_tflm_image
from tinymeter.core.errors import ConfigError, TinymeterError
from tinymeter.core.texttable import text_table
from tinymeter.device import EmulatedDevice
from tinymeter.firmware.build import BuildConfig, FirmwareBuilder
from tinymeter.firmware.codegen import IoTensor, generate, io_tensors
from tinymeter.firmware.host import decode_outputs, encode_inputs
from tinymeter.models.tflite import load_tflite, read_model_bytes

log = logging.getLogger(__name__)

#: Float outputs match when |device - reference| <= ATOL + RTOL * |reference|.
FLOAT_ATOL = 1e-5
FLOAT_RTOL = 1e-5
#: TensorFlow's interpreter runs other float kernels (and may differ by 1 LSB on int8).
TF_ATOL = 1e-4
TF_RTOL = 1e-4


@dataclass(frozen=True)
class OutputCheck:
    """One model output over every sample, against one reference."""

    reference: str
    output: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    elements: int
    mismatches: int
    max_abs_diff: float
    #: Samples whose arg-max over the last axis agrees (classification outputs), of
    #: ``top1_total`` (0 when the output has a single element per sample).
    top1_agree: int
    top1_total: int

    @property
    def passed(self) -> bool:
        return self.mismatches == 0


@dataclass(frozen=True)
class Validation:
    """The result of ``tinymeter validate``."""

    model: str
    board: str
    runtime: str
    samples: int
    inputs: str
    checks: tuple[OutputCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        for c, raw in zip(self.checks, d["checks"]):
            raw["passed"] = c.passed
        return d


def compare(reference: str, ios: Sequence[IoTensor], device: Sequence[Sequence[np.ndarray]],
            expected: Sequence[Sequence[np.ndarray]], atol: float = 0.0,
            rtol: float = 0.0) -> list[OutputCheck]:
    """Per-output checks of *device* against *expected* (``[sample][output]`` arrays).
    Integer outputs must be equal; float outputs within ``atol + rtol * |expected|``."""
    if len(device) != len(expected):
        raise TinymeterError(f"{len(device)} device samples vs {len(expected)} reference ones")
    checks = []
    for i, io in enumerate(ios):
        got = np.stack([np.asarray(s[i]).reshape(io.shape) for s in device])
        want = np.stack([np.asarray(s[i]).reshape(io.shape) for s in expected])
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        if np.issubdtype(got.dtype, np.floating):
            bad = ~(diff <= atol + rtol * np.abs(want.astype(np.float64)))
        else:
            bad = diff != 0
        per_sample = got.reshape(len(got), -1)
        classes = io.shape[-1] if io.shape else 1
        top1_total = len(got) * (per_sample.shape[1] // classes) if classes > 1 else 0
        agree = 0
        if top1_total:
            a = got.reshape(-1, classes).argmax(axis=1)
            b = want.reshape(-1, classes).argmax(axis=1)
            agree = int((a == b).sum())
        checks.append(OutputCheck(
            reference=reference, output=i, name=io.name, dtype=str(got.dtype), shape=io.shape,
            elements=int(got.size), mismatches=int(bad.sum()),
            max_abs_diff=float(np.nanmax(diff)) if diff.size else 0.0,
            top1_agree=agree, top1_total=top1_total))
    return checks


def _split_samples(arr: np.ndarray, io: IoTensor, where: str) -> list[np.ndarray]:
    """An input array as samples: shaped like the tensor (one sample) or with one more
    leading axis (a batch of samples)."""
    shape = tuple(io.shape)
    if arr.shape == shape or (arr.size == int(np.prod(shape)) and arr.ndim < len(shape) + 1):
        return [arr.reshape(shape)]
    if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
        return list(arr)
    raise ConfigError(f"{where}: input {io.name!r} must have shape {shape} or (N, "
                      f"{', '.join(map(str, shape))}), got {arr.shape}")


def _cast(arr: np.ndarray, io: IoTensor, where: str) -> np.ndarray:
    """*arr* in the tensor's dtype: same dtype as is, float data quantized for an integer
    tensor (with its scale/zero point), integers for a float tensor converted."""
    dtype = io.numpy_dtype
    if arr.dtype == dtype:
        return arr
    if np.issubdtype(dtype, np.integer) and np.issubdtype(arr.dtype, np.floating):
        if not io.scale:
            raise ConfigError(f"{where}: input {io.name!r} is {dtype} without quantization; "
                              f"give {dtype} data")
        info = np.iinfo(dtype)
        q = np.round(arr / io.scale) + (io.zero_point or 0)
        return np.clip(q, info.min, info.max).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        return arr.astype(dtype)
    raise ConfigError(f"{where}: input {io.name!r} must be {dtype}, got {arr.dtype}")


def load_inputs(path: Path, ios: Sequence[IoTensor]) -> list[list[np.ndarray]]:
    """Samples from a ``.npy`` (single-input models) or ``.npz`` (arrays named like the
    inputs, or ``arr_0``, ``arr_1``... in input order) file: ``[sample][input]``.  Float
    data for an int8 input is quantized with the input's scale and zero point."""
    where = str(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read inputs {where}: {exc}") from None
    if isinstance(loaded, np.ndarray):
        if len(ios) != 1:
            raise ConfigError(f"{where}: the model has {len(ios)} inputs; give an .npz with "
                              "one array per input")
        arrays = [loaded]
    else:
        with loaded:
            names = list(loaded.files)
            keys = [io.name if io.name in names else f"arr_{i}" for i, io in enumerate(ios)]
            missing = [k for k in keys if k not in names]
            if missing:
                raise ConfigError(f"{where}: no array {missing[0]!r} (has {', '.join(names)}); "
                                  "name arrays like the model's inputs or arr_0, arr_1...")
            arrays = [loaded[k] for k in keys]
    per_input = [[_cast(s, io, where) for s in _split_samples(a, io, where)]
                 for a, io in zip(arrays, ios)]
    counts = {len(p) for p in per_input}
    if len(counts) != 1:
        raise ConfigError(f"{where}: inputs have different sample counts {sorted(counts)}")
    return [list(sample) for sample in zip(*per_input)]


def random_inputs(ios: Sequence[IoTensor], samples: int, seed: int) -> list[list[np.ndarray]]:
    """Seeded random samples over each input's full range (integers) or N(0, 1) (floats)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        row = []
        for io in ios:
            dtype = io.numpy_dtype
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                row.append(rng.integers(info.min, info.max, size=io.shape, endpoint=True,
                                        dtype=dtype))
            else:
                row.append(rng.standard_normal(io.shape).astype(dtype))
        out.append(row)
    return out


def format_validation(v: Validation) -> str:
    """The terminal table: one row per (reference, output)."""
    headers = ["reference", "output", "dtype", "shape", "max |diff|", "mismatches", "top-1", "ok"]
    rows = []
    for c in v.checks:
        top1 = f"{c.top1_agree}/{c.top1_total}" if c.top1_total else "-"
        rows.append([c.reference, f"{c.output} {c.name}", c.dtype, "x".join(map(str, c.shape)),
                     f"{c.max_abs_diff:g}", f"{c.mismatches}/{c.elements}", top1,
                     "yes" if c.passed else "NO"])
    verdict = ("PASS: outputs match" if v.passed else
               "FAIL: outputs differ from the reference")
    return "\n".join([f"{v.model} on {v.board}, {v.runtime}: {v.samples} sample(s), {v.inputs}",
                      *text_table(headers, rows, left=(0, 1, 2, 3)), verdict])


# -- I/O: the reference interpreters and the emulated firmware ---------------------------


def tflm_reference(tflite: bytes, samples: Sequence[Sequence[np.ndarray]],
                   n_outputs: int) -> list[list[np.ndarray]]:
    """Outputs of the host ``tflite-micro`` interpreter (TFLM's reference kernels) for
    every sample."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise ConfigError("validate compares with the tflite-micro interpreter: install it "
                          "with `pip install tflite-micro`") from None
    interp = runtime.Interpreter.from_bytes(tflite, arena_size=max(len(tflite) * 10, 1 << 20))
    out = []
    for sample in samples:
        for i, x in enumerate(sample):
            interp.set_input(np.ascontiguousarray(x), i)
        interp.invoke()
        out.append([np.array(interp.get_output(i)) for i in range(n_outputs)])
    return out


def tensorflow_reference(tflite: bytes,
                         samples: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]] | None:
    """Outputs of TensorFlow's ``tf.lite.Interpreter`` (None without TensorFlow)."""
    try:
        import tensorflow as tf
    except ImportError:
        log.warning("TensorFlow is not installed: float outputs are compared with "
                    "tflite-micro only")
        return None

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": still the reference
        warnings.simplefilter("ignore", UserWarning)
        interp = tf.lite.Interpreter(model_content=tflite)
    interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()
    results = []
    for sample in samples:
        for detail, x in zip(ins, sample):
            interp.set_tensor(detail["index"], np.asarray(x).reshape(detail["shape"]))
        interp.invoke()
        results.append([np.array(interp.get_tensor(d["index"])) for d in outs])
    return results


def run_firmware(model_path: Path, board: Any, samples: Sequence[Sequence[np.ndarray]], *,
                 library: Any = None, kernels: str = "reference",
                 budget_instructions: int, timeout_s: float) -> list[list[np.ndarray]]:
    """Outputs of the emulated firmware (own runtime with *kernels*, or the TFLM
    *library*) for every sample, one inference per sample in one run."""
    model = load_tflite(model_path)
    main = model.main
    raw = encode_inputs(io_tensors(model, main.inputs), samples)
    with tempfile.TemporaryDirectory(prefix="tm-validate-") as work:
        if library is None:
            gen = generate(model, name=Path(model_path).stem)
            elf = FirmwareBuilder().build(gen, board, BuildConfig(kernels=kernels)).elf
        else:
            elf = build_tflm_image(model_path, board, library, work=Path(work),
                                   timeout_s=timeout_s).elf
        run = EmulatedDevice(board, budget_instructions=budget_instructions,
                             timeout_s=timeout_s, count=False).run_elf(elf, raw)
    assert run.raw is not None
    return decode_outputs(io_tensors(model, main.outputs), run.raw.outputs)


def validate(model_path: Path, board: Any, *, library: Any = None, kernels: str = "reference",
             inputs: Path | None = None, samples: int = 4, seed: int = 0,
             budget_instructions: int, timeout_s: float) -> Validation:
    """Run the firmware on the inputs and compare every output with tflite-micro (and
    TensorFlow for float models)."""
    model = load_tflite(model_path)
    main = model.main
    in_ios, out_ios = io_tensors(model, main.inputs), io_tensors(model, main.outputs)
    if inputs is not None:
        data, source = load_inputs(Path(inputs), in_ios), f"inputs from {inputs}"
    else:
        data, source = random_inputs(in_ios, samples, seed), f"random inputs (seed {seed})"
    device = run_firmware(model_path, board, data, library=library, kernels=kernels,
                          budget_instructions=budget_instructions, timeout_s=timeout_s)
    tflite = read_model_bytes(model_path)
    is_float = any(np.issubdtype(io.numpy_dtype, np.floating) for io in (*in_ios, *out_ios))
    tol = (FLOAT_ATOL, FLOAT_RTOL) if is_float else (0.0, 0.0)
    checks = compare("tflite-micro", out_ios, device,
                     tflm_reference(tflite, data, len(out_ios)), *tol)
    if is_float:
        tf_out = tensorflow_reference(tflite, data)
        if tf_out is not None:
            checks += compare("tensorflow", out_ios, device, tf_out, TF_ATOL, TF_RTOL)
    runtime = library.label if library is not None else f"tinymeter {kernels} kernels"
    return Validation(Path(model_path).name, board.name, runtime, len(data), source,
                      tuple(checks))
