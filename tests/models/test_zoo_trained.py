"""The zoo's trained model: digits_cnn, trained on scikit-learn's digits.

Why: every other zoo model has random weights (fine for latency, meaningless for
accuracy); a user evaluating the quantization workflow needs one whose outputs
mean something. The int8 model built by the zoo must classify the held-out digits
well when run through the firmware runtime (host build), bit-exactly like TFLM,
and `zoo list` must say which models are trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinymeter.cli.main import main
from tinymeter.firmware.host import run_on_host
from tinymeter.models import zoo
from tinymeter.models.builders import run_tflm
from tinymeter.models.tflite import parse_tflite

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")
pytest.importorskip("tflite_micro")

pytestmark = [pytest.mark.slow, pytest.mark.tf]


def test_digits_cnn_int8_is_accurate_on_the_runtime(tmp_path: Path) -> None:
    from tinymeter.models.digits import load_digits_split

    blob = zoo.build_tflite("digits_cnn", cache_dir=tmp_path).read_bytes()
    sg = parse_tflite(blob).main
    q = sg.tensors[sg.inputs[0]].quantization
    scale, zp = q.scale[0], q.zero_point[0]
    data = load_digits_split()
    x = np.clip(np.round(data.x_test / scale) + zp, -128, 127).astype(np.int8)
    outs = run_on_host(blob, [[xi[None]] for xi in x])
    pred = np.array([int(np.argmax(o[0])) for o in outs])
    accuracy = float(np.mean(pred == data.y_test))
    assert accuracy > 0.85, accuracy
    for i in range(3):
        assert np.array_equal(outs[i][0], run_tflm(blob, [x[i][None]])[0])


def test_zoo_list_marks_trained_models(capsys) -> None:
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "[trained on scikit-learn digits]" in lines["digits_cnn"]
    assert "[untrained]" in lines["ds_cnn_kws"]
    assert zoo.get_entry("digits_cnn").trained_on and not zoo.get_entry("resnet8").trained_on
