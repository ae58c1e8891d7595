"""Per-op lowerings: TFLite operator -> device kernel call with precomputed parameters."""

from __future__ import annotations

from collections.abc import Mapping

from tinymeter.firmware.lower import conv, elementwise, pool, reshape, softmax
from tinymeter.firmware.lower.base import Layer, LowerContext, Lowering

__all__ = ["Layer", "LowerContext", "Lowering", "lowerings"]


def lowerings() -> Mapping[str, Lowering]:
    """Every supported builtin op name mapped to its lowering."""
    table: dict[str, Lowering] = {}
    for module in (conv, pool, softmax, elementwise, reshape):
        table.update(module.LOWERINGS)
    return table
