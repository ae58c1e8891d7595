"""Small multi-layer int8 models with different layer mixes, for calibration demos and CI.

Why: calibration needs layers whose instruction mixes differ (a 1x1 convolution is
mostly multiply-accumulate, a depthwise 3x3 mostly address arithmetic and loads, a
fully-connected layer a tight dot product), and CI needs them without TensorFlow.
These chains use only the ops the runtime has kernels for (CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED) and are built with :mod:`tinymeter.models.builders`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8
from tinymeter.models.tflite import (
    Model,
    Operator,
    Subgraph,
    Tensor,
    default_options,
    serialize_tflite,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a chain: ``conv`` (k x k, stride s), ``dw`` (depthwise k x k) or ``fc``."""

    kind: str
    channels: int = 8
    kernel: int = 3
    stride: int = 1


def chain_model(name: str, input_shape: Sequence[int], layers: Sequence[LayerSpec],
                seed: int = 0) -> bytes:
    """A .tflite whose layers run in sequence (SAME padding, RELU6 on convolutions)."""
    tensors: list[Tensor] = []
    operators: list[Operator] = []
    next_buffer = 1

    def add(t: Tensor) -> int:
        nonlocal next_buffer
        if t.data is not None:
            t = dataclasses.replace(t, buffer=next_buffer)
            next_buffer += 1
        tensors.append(t)
        return len(tensors) - 1

    shape = tuple(input_shape)
    scale, zp = 0.05, -3
    current = add(int8_tensor("input", shape, scale, zp))
    rng = np.random.default_rng(seed)
    for i, spec in enumerate(layers):
        out_scale, out_zp = float(0.05 + 0.1 * rng.random()), int(rng.integers(-10, 10))
        if spec.kind == "fc":
            n_in = int(np.prod(shape[1:]))
            w = int8_tensor(f"w{i}", (spec.channels, n_in), 0.01, 0,
                            data=random_int8((spec.channels, n_in), seed=seed * 100 + i))
            out_shape: tuple[int, ...] = (1, spec.channels)
            opcode, options = "FULLY_CONNECTED", {}
        elif spec.kind in ("conv", "dw"):
            _, h, wd, c = shape
            oh, ow = -(-h // spec.stride), -(-wd // spec.stride)
            k = spec.kernel
            if spec.kind == "conv":
                wshape = (spec.channels, k, k, c)
                out_shape = (1, oh, ow, spec.channels)
                opcode = "CONV_2D"
                options = {"padding": "SAME", "stride_w": spec.stride, "stride_h": spec.stride,
                           "fused_activation_function": "RELU6"}
            else:
                wshape = (1, k, k, c)
                out_shape = (1, oh, ow, c)
                opcode = "DEPTHWISE_CONV_2D"
                options = {"padding": "SAME", "stride_w": spec.stride, "stride_h": spec.stride,
                           "depth_multiplier": 1, "fused_activation_function": "RELU6"}
            n_out = wshape[0] if spec.kind == "conv" else c
            scales = [0.005 + 0.01 * float(rng.random()) for _ in range(n_out)]
            w = int8_tensor(f"w{i}", wshape, data=random_int8(wshape, seed=seed * 100 + i),
                            per_channel_scales=scales,
                            quantized_dimension=0 if spec.kind == "conv" else 3)
        else:
            raise ValueError(f"unknown layer kind {spec.kind!r}")
        bias = bias_tensor(f"b{i}", rng.integers(-200, 200, size=w.shape[0] if spec.kind != "dw"
                                                 else shape[3]).astype(np.int32),
                           input_scale=scale, weight_scales=w)
        wi, bi = add(w), add(bias)
        out = add(int8_tensor(f"t{i}", out_shape, out_scale, out_zp))
        operators.append(Operator(opcode=opcode, version=1, inputs=(current, wi, bi),
                                  outputs=(out,), options={**default_options(opcode), **options}))
        current, shape, scale = out, out_shape, out_scale
    sg = Subgraph(name="main", tensors=tuple(tensors), inputs=(0,), outputs=(current,),
                  operators=tuple(operators))
    return serialize_tflite(Model(version=3, description=f"tinymeter demo {name}", subgraphs=(sg,)))


#: Name -> (input shape, layers): a spread of layer mixes and sizes.
DEMO_MODELS: dict[str, tuple[tuple[int, ...], tuple[LayerSpec, ...]]] = {
    "mlp_a": ((1, 96), (LayerSpec("fc", 48), LayerSpec("fc", 24), LayerSpec("fc", 10))),
    "mlp_b": ((1, 40), (LayerSpec("fc", 128), LayerSpec("fc", 12))),
    "cnn_a": ((1, 10, 10, 3), (LayerSpec("conv", 8, 3), LayerSpec("dw", kernel=3),
                               LayerSpec("conv", 12, 1), LayerSpec("fc", 6))),
    "cnn_b": ((1, 12, 12, 4), (LayerSpec("conv", 6, 3, 2), LayerSpec("conv", 16, 1),
                               LayerSpec("dw", kernel=3, stride=2), LayerSpec("fc", 8))),
    "dscnn": ((1, 8, 8, 8), (LayerSpec("dw", kernel=3), LayerSpec("conv", 16, 1),
                             LayerSpec("dw", kernel=3), LayerSpec("conv", 8, 1))),
    "wide": ((1, 6, 6, 16), (LayerSpec("conv", 24, 1), LayerSpec("dw", kernel=5),
                             LayerSpec("fc", 16))),
    "deep_fc": ((1, 24), (LayerSpec("fc", 24), LayerSpec("fc", 24), LayerSpec("fc", 24),
                          LayerSpec("fc", 24), LayerSpec("fc", 4))),
    # Extreme shapes: outer loops dominate (1 input channel, 1x1 kernels, tiny dot products)
    # or inner loops dominate (long dot products), so per-class costs separate.
    "thin": ((1, 16, 16, 1), (LayerSpec("conv", 2, 1), LayerSpec("dw", kernel=1),
                              LayerSpec("conv", 1, 3), LayerSpec("fc", 2))),
    "tall_fc": ((1, 512), (LayerSpec("fc", 2), LayerSpec("fc", 64), LayerSpec("fc", 1))),
    "fat_conv": ((1, 4, 4, 32), (LayerSpec("conv", 32, 3), LayerSpec("dw", kernel=3, stride=2),
                                 LayerSpec("conv", 4, 1))),
}


def write_demo_models(out_dir: Path, names: Sequence[str] | None = None) -> list[Path]:
    """Write the demo models as ``<name>.tflite`` into *out_dir* (deterministic bytes)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names or DEMO_MODELS):
        shape, layers = DEMO_MODELS[name]
        path = out_dir / f"{name}.tflite"
        data = chain_model(name, shape, layers, seed=i + 1)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        paths.append(path)
    return paths
