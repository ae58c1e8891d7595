"""Shared machinery of the kernel tests: runners per target, random cases, exact checks.

A runner executes a .tflite through the tinymeter runtime on one target, (blob,
inputs) -> outputs: the host build (fast arithmetic checks) or the real firmware on
an emulated board with one kernel set. Every kernel test compares a runner's outputs
with the tflite-micro interpreter bit for bit (or within a stated ULP bound where
libm differences make exactness impossible).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinymeter.firmware.host import run_on_host
from tinymeter.models.builders import run_tflm

#: The device runtime's sources (kernels, include/).
RUNTIME = Path(__file__).resolve().parents[1] / "firmware" / "runtime"

Runner = Callable[[bytes, Sequence[Sequence[np.ndarray]]], list[list[np.ndarray]]]

#: Runner name -> (board, kernel set); board None = host build.
TARGETS: dict[str, tuple[str | None, str]] = {
    "host": (None, "reference"),
    "emu-m0plus-ref": ("nucleo-g0b1re", "reference"),
    "emu-m4-ref": ("nucleo-l4r5zi", "reference"),
    "emu-m4-opt": ("nucleo-l4r5zi", "optimized"),
    "emu-m7-ref": ("nucleo-f767zi", "reference"),
    "emu-m7-opt": ("nucleo-f767zi", "optimized"),
}


def make_runner(name: str) -> Runner:
    """The runner called *name* (see TARGETS); skips when the Arm toolchain is missing."""
    board, kernels = TARGETS[name]
    if board is None:
        return run_on_host
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    from tinymeter.device import run_on_emulator

    def run(blob: bytes, inputs: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
        return run_on_emulator(blob, inputs, board=board, kernels=kernels)

    return run


#: Host build plus real firmware with the reference kernels on a soft-float M0+, an
#: M4 (single-precision FPU) and an M7: the runners of op families that have no
#: optimized kernels.
REFERENCE_RUNNERS = ["host", "emu-m0plus-ref", "emu-m4-ref", "emu-m7-ref"]


def named_runner_fixture(names: Sequence[str]) -> Any:
    """A module-scoped ``runner`` fixture over *names* giving (name, runner) pairs.

    Why one factory: every kernel module parametrizes its cases over the same kind of
    runners, and ``conftest`` marks a case ``emulated`` from the name in the pair.
    Assign it in the module as ``runner = named_runner_fixture(RUNNERS)``.
    """

    @pytest.fixture(params=list(names), scope="module", name="runner")
    def runner(request: pytest.FixtureRequest) -> tuple[str, Runner]:
        return request.param, make_runner(request.param)

    return runner


def random_scale(rng: np.random.Generator, lo: float = -3.0, hi: float = 0.0) -> float:
    """A float32 quantization scale, log-uniform in [10**lo, 10**hi)."""
    return float(np.float32(10.0 ** rng.uniform(lo, hi)))


@dataclass
class Case:
    """A single-op model, its input shapes and a description for failure messages.

    Inputs per seed: int8 cases get a uniformly random and an edge-value inference;
    float cases a normal(0, scale) and a wide normal(0, wide) inference.
    """

    blob: bytes
    input_shapes: list[tuple[int, ...]]
    desc: dict[str, Any] = field(default_factory=dict)
    scale: float = 2.0
    dtype: type = np.int8
    wide: float = 300.0

    def inputs(self, seed: int) -> list[list[np.ndarray]]:
        rng = np.random.default_rng(seed)
        if self.dtype == np.int8:
            rand = [rng.integers(-128, 128, size=s).astype(np.int8) for s in self.input_shapes]
            edge = [rng.choice(np.array([-128, -127, 0, 126, 127], np.int8), size=s)
                    for s in self.input_shapes]
            return [rand, edge]
        rand = [(rng.standard_normal(s) * self.scale).astype(np.float32)
                for s in self.input_shapes]
        wide = [(rng.standard_normal(s) * self.wide).astype(np.float32) for s in self.input_shapes]
        return [rand, wide]


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in units in the last place of float32 (ordered integer representation)."""
    def ordered(x: np.ndarray) -> np.ndarray:
        i = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    return np.abs(ordered(a) - ordered(b))


@dataclass
class SaturatingCase:
    """An int8 single-op model fed, per seed, a uniformly random inference, the two
    saturating extremes (all -128, all 127) and any case-specific inferences.

    Why the extremes: they drive every accumulator, rescale and clamp to its limit,
    where an off-by-one in rounding or saturation shows first.
    """

    blob: bytes
    input_shapes: list[tuple[int, ...]]
    desc: dict[str, Any] = field(default_factory=dict)
    extra_inputs: list[list[np.ndarray]] = field(default_factory=list)

    def inputs(self, seed: int) -> list[list[np.ndarray]]:
        rng = np.random.default_rng(seed)
        rand = [rng.integers(-128, 128, size=s).astype(np.int8) for s in self.input_shapes]
        lo = [np.full(s, -128, np.int8) for s in self.input_shapes]
        hi = [np.full(s, 127, np.int8) for s in self.input_shapes]
        return [rand, lo, hi, *self.extra_inputs]


def assert_matches_tflm(blob: bytes, inputs: Sequence[Sequence[np.ndarray]],
                        got: Sequence[Sequence[np.ndarray]], desc: Any, max_ulp: int = 0) -> None:
    """Every inference's outputs equal TFLM's for the same inputs: same count, dtype
    and shape, and bit for bit (or within *max_ulp* float32 ULP)."""
    assert len(got) == len(inputs), desc
    for k, (inp, out) in enumerate(zip(inputs, got)):
        refs = run_tflm(blob, inp)
        assert len(out) == len(refs), desc
        for o, ref in zip(out, refs):
            assert o.dtype == ref.dtype and o.shape == ref.shape, desc
            if max_ulp == 0:
                if o.tobytes() != ref.tobytes():
                    flat_o, flat_r = o.reshape(-1), ref.reshape(-1)
                    bad = np.flatnonzero([a.tobytes() != b.tobytes() for a, b in zip(flat_o, flat_r)])
                    first = int(bad[0])
                    raise AssertionError(
                        f"inference {k}: {len(bad)} of {ref.size} outputs differ, first at "
                        f"{np.unravel_index(first, ref.shape)}: got {flat_o[first]!r} want "
                        f"{flat_r[first]!r}; case {desc}")
            else:
                d = ulp_distance(o, ref)
                assert d.max() <= max_ulp, (f"inference {k}: max {d.max()} ULP (> {max_ulp}) at "
                                            f"{np.unravel_index(d.argmax(), d.shape)}; {desc}")


def check(case: Case, runner: tuple[str, Runner], seed: int, max_ulp: int = 0,
          n_emulated: int = 3) -> None:
    """Run *case* on the runner and in TFLM; outputs must match bit for bit (or within
    *max_ulp*). Emulated runners only take the first *n_emulated* seeds (each costs a
    firmware link plus emulation)."""
    name, run = runner
    if name != "host" and seed >= n_emulated:
        pytest.skip("emulated runners take the first cases only")
    inputs = case.inputs(seed)
    assert_matches_tflm(case.blob, inputs, run(case.blob, inputs), case.desc, max_ulp)


#: Targets every kernel must build for warning-free: the host build and each Cortex-M
#: core (by core-table name), with the very command lines of the firmware builds
#: (``firmware.build.compile_argv`` / ``host_compile_argv``: one source of flags per core).
WARNING_TARGETS: dict[str, str | None] = {
    "host": None, "m0plus": "cortex-m0plus", "m4": "cortex-m4f", "m7": "cortex-m7",
    "m33": "cortex-m33",
}


def warning_argv(target: str, source: Path, obj: Path) -> list[str]:
    """The build's command line for *source* on *target*, with ``-Werror`` added."""
    from tinymeter.core.cores import get_core
    from tinymeter.firmware.build import ARM_CC, BuildConfig, compile_argv, host_compile_argv

    core = WARNING_TARGETS[target]
    include = RUNTIME / "include"
    argv = (host_compile_argv("gcc", source, obj, include) if core is None else
            compile_argv(ARM_CC, get_core(core), BuildConfig(), source, obj, include))
    argv.insert(argv.index("-c"), "-Werror")
    return argv


def assert_kernels_compile_warning_free(tmp_path: Path, target: str,
                                        names: Sequence[str]) -> None:
    """The reference and optimized kernel files *names* compile with -Wall -Wextra
    -Werror for *target* (see WARNING_TARGETS); skips when its compiler is missing.
    The optimized set is not compiled for the M0+, whose builds always use reference."""
    cc = "gcc" if WARNING_TARGETS[target] is None else "arm-none-eabi-gcc"
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    ksets = ("reference",) if target == "m0plus" else ("reference", "optimized")
    sources = [RUNTIME / "kernels" / kset / n for kset in ksets for n in names
               if (RUNTIME / "kernels" / kset / n).exists()]
    assert sources, names
    for src in sources:
        argv = warning_argv(target, src, tmp_path / f"{src.parent.name}_{src.stem}.o")
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stderr}"
