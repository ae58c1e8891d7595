"""The one run interface (tinymeter.device): an emulated run and its per-layer views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinymeter.core.boards import load_board
from tinymeter.core.errors import EmulationError
from tinymeter.device import EmulatedDevice
from tinymeter.firmware.build import FirmwareBuilder
from tinymeter.firmware.codegen import generate
from tinymeter.firmware.host import run_generated_on_host
from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model_ir
from tinymeter.sim.costmodel import cost_model_for, parameter_vector


def _fc():
    x = int8_tensor("x", (1, 16), 0.05, 2)
    w = int8_tensor("w", (8, 16), 0.01, 0, data=random_int8((8, 16), seed=3))
    b = bias_tensor("b", np.arange(8, dtype=np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, 8), 0.2, -1)
    return generate(single_op_model_ir("FULLY_CONNECTED", [x, w, b], [y]), name="fc")


@pytest.mark.slow
def test_emulated_device_run_and_layer_views(tmp_path: Path) -> None:
    board = load_board("nucleo-l4r5zi")
    gen = _fc()
    builder = FirmwareBuilder(cache_dir=tmp_path)
    image = builder.build(gen, board)
    model = cost_model_for(board, Path("/nonexistent"))
    device = EmulatedDevice(board, cost_model=model, budget_instructions=10**8, timeout_s=120)
    inputs = [[random_int8((1, 16), seed=k)] for k in range(2)]
    run = device.run(image, inputs)
    # outputs decoded per inference, bit-exact with the host build of the same runtime
    want = run_generated_on_host(gen, inputs, builder=builder)
    assert len(run.outputs) == 2
    for got, ref in zip(run.outputs, want):
        assert np.array_equal(got[0], ref[0])
    # features priced with the run's own parameters are the hook's cycles, per layer
    features = run.layer_features(model.params, 1)
    cycles = run.layer_cycles(1)
    assert features.shape[0] == 1 and cycles[0] > 0
    assert features @ parameter_vector(model.params) == pytest.approx(cycles, rel=1e-6)
    assert run.layer_activity(1).shape == (1, 2)
    assert run.instructions_per_layer[0] > 0 and run.stack_bytes and run.elf is not None
    # default inputs (what a board runs): one inference
    default = device.run_elf(image.elf)
    assert default.raw is not None and default.raw.inferences == 1
    # without counting there is no profile to group by layer
    quick = EmulatedDevice(board, count=False).run(image, inputs[:1])
    assert np.array_equal(quick.outputs[0][0], run.outputs[0][0])
    with pytest.raises(EmulationError, match="no instruction profile"):
        quick.layer_features(model.params, 1)
