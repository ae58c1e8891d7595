"""Mutational fuzz of the MLPerf Tiny models through parse, inspect, lower and codegen.

Keeps the issue-13 promise fixed: whatever a .tflite holds, tinymeter ends in a
TinymeterError (one ``error:`` line in the CLI) or a result, never a traceback.
Bounded (a few hundred mutants, deterministic); ``benchmarks/fuzz.py`` runs the long
version through ``estimate``. Skipped when the shared models are absent.
"""

from __future__ import annotations

import random
import traceback
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinymeter.core.errors import TinymeterError
from tinymeter.firmware.codegen import generate
from tinymeter.firmware.support import op_support
from tinymeter.models.inspect import inspect_model
from tinymeter.models.mutate import mutate_bytes, mutate_model
from tinymeter.models.tflite import Model, load_tflite, parse_tflite, serialize_tflite

MLPERF = Path(__file__).resolve().parents[2] / ".." / "shared" / "models" / "mlperf-tiny"
MODELS = ("ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite",
          "vww_96_int8.tflite")

pytestmark = pytest.mark.skipif(not all((MLPERF / m).exists() for m in MODELS),
                                reason="shared MLPerf Tiny models not present")


@cache
def _model(name: str) -> Model:
    return load_tflite(MLPERF / name)


def run_front_end(data: bytes) -> str:
    """Parse, inspect, check support, lower and generate: "ok" or the TinymeterError's
    class name; any other exception propagates (the bug the fuzz looks for)."""
    try:
        model = parse_tflite(data)
        inspect_model(model)
        op_support(model)
        generate(model)
    except TinymeterError as exc:
        return type(exc).__name__
    return "ok"


def _serialized(mutant: Model) -> bytes | None:
    try:
        return serialize_tflite(mutant, verify=False)
    except Exception:  # the test writer refuses some mutants outright: not a product path
        return None


def _check(data: bytes | None, what: str) -> None:
    if data is None:
        return
    try:
        run_front_end(data)
    except Exception:
        pytest.fail(f"{what}: non-TinymeterError escaped\n{traceback.format_exc()}")


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(MODELS), seed=st.integers(0, 2**32 - 1), count=st.integers(1, 3))
def test_model_mutants_end_in_tinymeter_errors(name: str, seed: int, count: int) -> None:
    mutant, names = mutate_model(_model(name), random.Random(seed), count)
    _check(_serialized(mutant), f"{name} seed={seed} mutations={names}")


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(MODELS[:3]), seed=st.integers(0, 2**32 - 1), count=st.integers(1, 4))
def test_byte_mutants_end_in_tinymeter_errors(name: str, seed: int, count: int) -> None:
    data = (MLPERF / name).read_bytes()
    _check(mutate_bytes(data, random.Random(seed), count), f"{name} bytes seed={seed}")


def test_unmutated_models_pass() -> None:
    assert [run_front_end((MLPERF / m).read_bytes()) for m in MODELS] == ["ok"] * 4
