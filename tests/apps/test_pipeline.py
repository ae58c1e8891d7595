"""End-to-end estimate: .tflite -> firmware ELF -> emulator -> per-layer report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinymeter.apps.estimate import estimate
from tinymeter.cli.main import main
from tinymeter.core.boards import load_board
from tinymeter.firmware.build import FirmwareBuilder
from tinymeter.models.builders import bias_tensor, int8_tensor, random_int8, single_op_model

MLPERF = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf-tiny"


def _fc_model(tmp_path: Path, n_in: int, n_out: int) -> Path:
    x = int8_tensor("x", (1, n_in), 0.05, 2)
    w = int8_tensor("w", (n_out, n_in), 0.01, 0, data=random_int8((n_out, n_in), seed=n_in))
    b = bias_tensor("b", np.zeros(n_out, np.int32), input_scale=0.05, weight_scales=w)
    y = int8_tensor("y", (1, n_out), 0.2, -1)
    path = tmp_path / f"fc{n_in}x{n_out}.tflite"
    path.write_bytes(single_op_model("FULLY_CONNECTED", [x, w, b], [y]))
    return path


@pytest.fixture(scope="module")
def builder(tmp_path_factory) -> FirmwareBuilder:
    return FirmwareBuilder(cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
def test_fc_instructions_scale_with_macs(tmp_path: Path, builder: FirmwareBuilder) -> None:
    board = load_board("nucleo-l4r5zi")
    small = estimate(_fc_model(tmp_path, 64, 16), board, builder=builder)
    big = estimate(_fc_model(tmp_path, 256, 16), board, builder=builder)
    assert small.layers[0].macs == 64 * 16 and big.layers[0].macs == 256 * 16
    # The inner loop dominates: 4x the MACs -> between 3x and 4.2x the instructions.
    ratio = big.layers[0].instructions / small.layers[0].instructions
    assert 3.0 < ratio < 4.2
    for est in (small, big):
        assert est.instructions == sum(r.instructions for r in est.layers)
        assert est.cycles == sum(r.cycles for r in est.layers)
        assert est.cycles >= est.instructions * 0.9
        assert est.ms == pytest.approx(est.cycles / 120e6 * 1e3)
        # energy by activity: 39.3 mW core + 0.25 nJ per flash read + 0.03 nJ per SRAM access
        e = est.energy
        assert est.energy_uj == pytest.approx(sum(r.energy_uj for r in est.layers))
        assert est.energy_uj == pytest.approx(39.3 * est.ms + 0.25e-3 * e["flash_reads"]
                                              + 0.03e-3 * e["sram_accesses"], rel=1e-4)  # rounded ms
        assert e["flash_reads"] > 0 and e["sram_accesses"] > 0
        assert est.overhead_instructions > 0
        assert est.stack_bytes is not None and 0 < est.stack_bytes < 4096
        assert est.arena_bytes >= 64 + 16


@pytest.mark.slow
def test_estimate_on_every_board(tmp_path: Path, builder: FirmwareBuilder) -> None:
    path = _fc_model(tmp_path, 32, 8)
    counts = {}
    for name in ("nucleo-g0b1re", "nucleo-f207zg", "nucleo-l4r5zi", "nucleo-f767zi",
                 "nucleo-l552ze-q"):
        est = estimate(path, load_board(name), builder=builder)
        assert est.board == name and est.layers[0].instructions > 32 * 8
        counts[name] = est.layers[0].instructions
    # ARMv6-M (M0+) needs more instructions than ARMv7E-M for the same kernel.
    assert counts["nucleo-g0b1re"] > counts["nucleo-l4r5zi"]


def test_cli_estimate_json(tmp_path: Path, capsys) -> None:
    if not (MLPERF / "ad01_int8.tflite").exists():
        pytest.skip("shared MLPerf Tiny models not present")
    out = tmp_path / "ad.json"
    csv = tmp_path / "ad.csv"
    assert main(["estimate", str(MLPERF / "ad01_int8.tflite"), "-q", "--json", str(out),
                 "--csv", str(csv), "--profile", "5"]) == 0
    text = capsys.readouterr().out
    assert "FULLY_CONNECTED" in text and "top functions" in text
    report = json.loads(out.read_text())
    assert report["report_version"] == 1
    assert len(report["layers"]) == 10
    assert sum(r["macs"] for r in report["layers"]) == pytest.approx(264_192, rel=0.01)
    assert report["cost_model"] == "tm-cortex-m4f-v3"
    assert len(csv.read_text().splitlines()) == 11
    # why: every layer's cycles split by mechanism (the parts add up to the layer), the
    # fully connected weights stream from flash through the D-cache
    for layer in report["layers"]:
        parts = layer["timing"]["cycles"]
        assert set(parts) == {"core", "branch", "ifetch_stall", "data_stall"}
        assert sum(parts.values()) == pytest.approx(layer["cycles"], abs=1.0)
        assert layer["timing"]["loads"].get("sram", 0) > 0
    fc = [r for r in report["layers"] if r["op"] == "FULLY_CONNECTED"]
    assert all(r["timing"]["loads"]["flash"] > 0 and r["timing"]["dcache"]["misses"] > 0
               for r in fc)
    assert report["timing"]["loads"]["flash"] == sum(r["timing"]["loads"]["flash"] for r in fc)
    assert "fetch stall" in text and "D-cache" in text


def test_report_says_how_much_of_the_board_a_model_takes(tmp_path: Path,
                                                          builder: FirmwareBuilder) -> None:
    from tinymeter.analysis.report import format_table

    est = estimate(_fc_model(tmp_path, 64, 16), load_board("nucleo-g0b1re"), builder=builder)
    assert (est.board_flash_bytes, est.board_ram_bytes) == (512 * 1024, 144 * 1024)
    line = next(x for x in format_table(est).splitlines() if x.startswith("memory"))
    ram = f"RAM {est.ram_bytes:,} B of 144 KiB ({100 * est.ram_bytes / (144 * 1024):.1f}%)"
    flash = (f"flash {est.flash_bytes:,} B of 512 KiB ({100 * est.flash_bytes / (512 * 1024):.1f}%, "
             f"weights {est.weight_bytes:,} B)")
    assert ram in line and flash in line
    assert est.to_dict()["board_ram_bytes"] == 144 * 1024


def test_estimate_compare_boards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _fc_model(tmp_path, 32, 8)
    out = tmp_path / "cmp.json"
    assert main(["estimate", str(model), "--compare", "nucleo-g0b1re,nucleo-f767zi", "-q",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"{model.name}, reference kernels, on 2 boards"
    assert text[1].split() == ["board", "core", "MHz", "est.", "ms", "cycles", "energy", "uJ",
                               "RAM", "flash"]
    rows = [line.split() for line in text[3:5]]
    assert [r[:3] for r in rows] == [["nucleo-g0b1re", "cortex-m0plus", "64"],
                                     ["nucleo-f767zi", "cortex-m7", "216"]]
    data = json.loads(out.read_text())
    assert [d["board"] for d in data] == ["nucleo-g0b1re", "nucleo-f767zi"]
    # the table's ms and percentages are the reports'
    for row, est in zip(rows, data):
        assert row[3] == f"{est['ms']:.3f}"
        assert row[6] == f"{100 * est['ram_bytes'] / est['board_ram_bytes']:.1f}%"
    assert main(["estimate", "--compare", ",", "-q"]) == 2
    assert "--compare needs board names" in capsys.readouterr().err
    assert main(["estimate", "--compare", "all", "--elf", "x.elf", "-q"]) == 2
    assert main(["estimate", str(model), "--compare", "nucleo-nope", "-q"]) == 2
    assert "unknown board 'nucleo-nope'" in capsys.readouterr().err
