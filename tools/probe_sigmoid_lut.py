"""Recover the 256-entry sigmoid table of TFLM's int16 LOGISTIC / TANH by probing.

Why: TFLM's 16x8 LOGISTIC and TANH (and its integer LSTM gates) interpolate a
table of sigmoid values whose entries are not a closed formula of sigmoid(i/24)
(about one in six differs from round(65536 sigmoid(i/24)) by one), so a
bit-exact runtime needs the very values. This script reads them off the
tflite-micro interpreter (the test reference) instead of any TFLM source: an
int16 TANH whose input scale makes the kernel's scaled input exactly 2x lands
each x = 128 k on table entry k with no interpolation, so the output is
entry - 32768; the last entry, reached only as the interpolation end of entry
254, is solved from one interpolated output. The values are checked into
firmware/runtime/kernels/reference/sigmoid_s16.c; tests/firmware/test_kernels_sigmoid_s16.py
re-probes them and compares.

Usage: python tools/probe_sigmoid_lut.py   (prints the C initializer)
"""

from __future__ import annotations

import numpy as np

from tinymeter.models.builders import run_tflm, single_op_model, tensor
from tinymeter.models.tflite import TensorType


def probe_scale() -> float:
    """A float32 input scale whose TANH Prepare yields multiplier 16384, shift 13
    (scaled input = 2x exactly): the smallest float32 with scale * 12288 >= 2."""
    s = np.float32(1 / 6144)
    while float(s) * 12288.0 < 2.0:
        s = np.nextafter(s, np.float32(1))
    return float(s)


def probe_table() -> list[int]:
    """The 256 uint16 table entries as the tflite-micro interpreter uses them."""
    xs = np.array([128 * k for k in range(255)] + [128 * 254 + 127], np.int16)
    i16 = TensorType.INT16
    blob = single_op_model("TANH", [tensor("x", (xs.size,), i16, scale=probe_scale(),
                                           zero_point=0)],
                           [tensor("y", (xs.size,), i16, scale=1 / 32768, zero_point=0)])
    (ys,) = run_tflm(blob, [xs])
    table = [int(v) + 32768 for v in ys[:255]]
    # entry 254 interpolated 254/256 of the way to entry 255
    step = int(ys[255]) + 32768 - table[254]
    delta = next(d for d in range(65) if (254 * d + 128) // 256 == step)
    return [*table, table[254] + delta]


def main() -> None:
    table = probe_table()
    rows = [", ".join(str(v) for v in table[i:i + 12]) for i in range(0, 256, 12)]
    print("{\n    " + ",\n    ".join(rows) + "}")


if __name__ == "__main__":
    main()
