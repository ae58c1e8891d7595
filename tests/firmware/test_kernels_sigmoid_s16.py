"""LOGISTIC and TANH int16 (16x8) against tflite-micro, bit for bit.

Why: TFLM's int16 sigmoid/tanh interpolate a sigmoid table with shifts that
differ per function and per input-scale path (power-of-two scales take a
multiplier-3 shortcut, others a doubled 15-bit multiplier); the integer LSTM's
gates use the same arithmetic. The host build is checked on every int16 input
value (eight inferences of 8192), the emulated M0+/M4/M7 on a random subset plus
the extremes; the table itself is re-probed from the interpreter and compared
with the C source.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from kernel_check import (
    REFERENCE_RUNNERS,
    RUNTIME,
    WARNING_TARGETS,
    Runner,
    assert_kernels_compile_warning_free,
    assert_matches_tflm,
    named_runner_fixture,
)

from tinymeter.core.errors import UnsupportedModelError
from tinymeter.firmware import quant
from tinymeter.firmware.codegen import generate
from tinymeter.models.builders import single_op_model, tensor
from tinymeter.models.tflite import TensorType, parse_tflite

pytest.importorskip("tflite_micro")

I16 = TensorType.INT16
RUNNERS = REFERENCE_RUNNERS
#: Input scales: TFLM's power-of-two paths (2^-12 for both, 2^-11 for TANH only),
#: power-of-two scales off those paths, and arbitrary ones.
SCALES = [2.0**-12, 2.0**-11, 2.0**-10, 2.0**-15, 1 / 3000, 0.0123, 3.1e-5, 1.7e-3]
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


runner = named_runner_fixture(RUNNERS)


def _model(op: str, n: int, scale: float) -> bytes:
    return single_op_model(op, [tensor("x", (n,), I16, scale=scale, zero_point=0)],
                           [tensor("y", (n,), I16, scale=1 / 32768, zero_point=0)])


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("scale", SCALES)
def test_sigmoid_s16_bit_exact(runner: tuple[str, Runner], op: str, scale: float) -> None:
    name, run = runner
    if name == "host":
        inputs = [[chunk] for chunk in ALL_INT16.reshape(8, -1)]  # arena-sized inferences
    else:
        if scale not in SCALES[:2] + SCALES[4:5]:
            pytest.skip("emulated runners take the power-of-two paths and one other scale")
        rng = np.random.default_rng(7)
        xs = [np.concatenate([rng.integers(-32768, 32768, 1000).astype(np.int16),
                              np.array([-32768, -32767, -1, 0, 1, 32767], np.int16)])]
        inputs = [xs]
    blob = _model(op, inputs[0][0].size, scale)
    assert_matches_tflm(blob, inputs, run(blob, inputs), {"op": op, "scale": scale})


def test_table_matches_interpreter() -> None:
    """The C table equals what tools/probe_sigmoid_lut.py reads off the interpreter."""
    spec = importlib.util.spec_from_file_location(
        "probe_sigmoid_lut", Path(__file__).resolve().parents[2] / "tools" / "probe_sigmoid_lut.py")
    assert spec is not None and spec.loader is not None
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    src = (RUNTIME / "kernels" / "reference" / "sigmoid_s16.c").read_text()
    body = src[src.index("tm_sigmoid_lut_u16[256] = {"):]
    table = [int(v) for v in re.findall(r"\d+", body[body.index("{"):body.index("}")])]
    assert table == probe.probe_table()


def test_params_follow_tflm_paths() -> None:
    assert quant.sigmoid16_input_params(2.0**-12, tanh=False) == (3, 0)
    assert quant.sigmoid16_input_params(2.0**-11, tanh=True) == (6, 0)
    # 2^-11 is a power of two but off LOGISTIC's path: 2^-11 * 12288 = 6, doubled 12 times
    assert quant.sigmoid16_input_params(2.0**-11, tanh=False) == (6 << 12, 12)


@pytest.mark.parametrize("bad", ["output_scale", "zero_point"])
def test_rejects_what_tflm_rejects(bad: str) -> None:
    out_scale = 1 / 30000 if bad == "output_scale" else 1 / 32768
    zp = 3 if bad == "zero_point" else 0
    blob = single_op_model("LOGISTIC", [tensor("x", (4,), I16, scale=2.0**-12, zero_point=zp)],
                           [tensor("y", (4,), I16, scale=out_scale, zero_point=0)])
    with pytest.raises(UnsupportedModelError, match="scale|zero point"):
        generate(parse_tflite(blob))


@pytest.mark.parametrize("target", sorted(WARNING_TARGETS))
def test_kernels_compile_warning_free(tmp_path: Path, target: str) -> None:
    assert_kernels_compile_warning_free(tmp_path, target, ("sigmoid_s16.c",))
