"""Cost tables against the Technical Reference Manuals: hand-written Thumb sequences.

Each case is a straight-line block (as the emulator translates it) assembled with
arm-none-eabi-as, with its cycle count worked out from the core's TRM instruction
timing table at zero wait states (the base :data:`CORE_PARAMETERS`, before a board's
flash effects).  Where the TRM gives a range (divide, long multiply on M3, branch
refill, dual issue on M7) the test checks the model stays inside it.  A conditional
end branch is priced per outcome (the native hook charges the taken or not-taken cost
when the successor block shows which); ``block_cycles`` below is the not-taken case.

TRMs: Cortex-M0+ DDI 0484 (ARMv6-M timings), Cortex-M3 DDI 0337 table 18-1,
Cortex-M4 DDI 0439 table 3-1 (+ table 7-1 FPU), Cortex-M7 DDI 0489 (dual issue,
branch prediction), Cortex-M33 100230 (same pipeline shape as M4).
P = pipeline refill (1..3 cycles), N = registers in the list including PC/LR.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tinymeter.sim.blocks import disassemble_block
from tinymeter.sim.costmodel import CORE_PARAMETERS, CostModel, to_fixed
from tinymeter.sim.native_hook import END_CONDITIONAL, END_NONE, END_PREDICTED, END_TAKEN

AS = "arm-none-eabi-as"
needs_as = pytest.mark.skipif(shutil.which(AS) is None, reason="arm-none-eabi-as missing")

MCPU = {"cortex-m0plus": "cortex-m0plus", "cortex-m3": "cortex-m3",
        "cortex-m4f": "cortex-m4", "cortex-m7": "cortex-m7", "cortex-m33": "cortex-m33"}
FPU = {"cortex-m4f": "fpv4-sp-d16", "cortex-m7": "fpv5-d16", "cortex-m33": "fpv5-sp-d16"}


def assemble(core: str, source: str, tmp_path: Path) -> bytes:
    """Machine code of *source* (Thumb, unified syntax) for *core*."""
    from elftools.elf.elffile import ELFFile

    src = tmp_path / "block.s"
    obj = tmp_path / "block.o"
    src.write_text(".syntax unified\n.thumb\n.text\n" + source + "\n")
    argv = [AS, f"-mcpu={MCPU[core]}", "-mthumb", str(src), "-o", str(obj)]
    if core in FPU:
        argv.insert(2, f"-mfpu={FPU[core]}")
    subprocess.run(argv, check=True, capture_output=True, text=True)
    with open(obj, "rb") as fh:
        return ELFFile(fh).get_section_by_name(".text").data()


def model(core: str) -> CostModel:
    return CostModel(name=f"test-{core}", core=core, clock_hz=1, params=CORE_PARAMETERS[core],
                     active_mw=0.0)


def cycles(core: str, source: str, tmp_path: Path) -> float:
    code = assemble(core, source, tmp_path)
    return model(core).block_cycles(disassemble_block(code, 0x08000000))


# (core, source, TRM cycles).  Lines: instruction ; TRM cycles
#: Register dependencies between neighbours (sim/hazards.py): an address computed by the
#: ALU instruction right before (M3 DDI 0337I 3.3, M4 DDI 0439 3.3.2: +1; M0+: fixed
#: timings, no interlock; M7: Arm's LLVM model, +1), a byte load's result used right away
#: (M7 only: +1), an FPU result used right away (M4 7.2.3: +1; M7 LLVM latency 3: +2).
DEPENDENT = """
        adds r1, r1, #4     @ 1
        ldr  r0, [r1]       @ M3/M4/M7: 2 (M7 1) + 1: address from the ADDS; M0+ 2
        ldr  r2, [r3]       @ pipelined behind the LDR: 1 (M0+ 2)
        ldrb r4, [r5]       @ pipelined: 1 (M0+ 2)
        adds r4, #1         @ 1; M7 + 1: uses the LDRB's result
        str  r0, [r6, r4]   @ 1 + 1: address from the ADDS (M0+ 2, no interlock)
"""
FP_DEPENDENT = """
        vldr s0, [r0]          @ M4 2, M7 1
        vldr s1, [r0, #4]      @ pipelined behind the VLDR: 1
        vmla.f32 s2, s0, s1    @ M4 3, M7 1
        vmla.f32 s2, s3, s4    @ the same: only the addend depends (bypassed)
        vadd.f32 s5, s2, s6    @ 1 + (M4 1, M7 2): consumes the VMLA's result
        vstr s5, [r1]          @ M4 2, M7 1 + (M4 1, M7 2): stores the VADD's result
        vpush {s16-s19}        @ 1 + 4 per register (M7 0.5 each)
        vpop {d8-d9}           @ 1 + 4
"""
#: GCC's post-incremented float loads: one-register VLDMs (1 + N, M4 table 7-1) pipeline
#: like VLDR unless the previous load's writeback is their base.
VLDM_CHAIN = """
        vldmia r3!, {s15}      @ 1 + 1
        vldmia r2!, {s14}      @ pipelined behind it: 1
        vldmia r2!, {s13}      @ 1 + 1: its base is the previous load's writeback
        vldmia r1, {s0-s3}     @ 1 + 4 (several registers: never pipelined)
"""
#: VMOV between core and FPU registers: 2 on the M4 (table 7-1), 1 within the FPU.
VMOV = """
        vmov s0, r1            @ 2
        vmov r2, s3            @ 2
        vmov.f32 s4, s5        @ 1
"""
EXACT = [
    ("cortex-m4f", VMOV, 2 + 2 + 1),
    ("cortex-m4f", VLDM_CHAIN, 2 + 1 + 2 + 5),
    ("cortex-m4f", DEPENDENT, 1 + 3 + 1 + 1 + 1 + 2),
    ("cortex-m3", DEPENDENT, 1 + 3 + 1 + 1 + 1 + 2),
    ("cortex-m7", DEPENDENT, 1 + 2 + 1 + 1 + 2 + 2),
    ("cortex-m0plus", DEPENDENT, 1 + 2 + 2 + 2 + 1 + 2),
    ("cortex-m4f", FP_DEPENDENT, 2 + 1 + 3 + 3 + 2 + 3 + 5 + 5),
    ("cortex-m7", FP_DEPENDENT, 1 + 1 + 1 + 1 + 3 + 3 + 3 + 3),
    # Cortex-M0+: ALU 1, MULS 1 (fast multiplier), LDR 2, STR 2, BX 2
    ("cortex-m0plus", """
        adds r0, r0, r1   @ 1
        muls r2, r3, r2   @ 1
        ldr  r0, [r1]     @ 2
        str  r0, [r2, #4] @ 2
        bx   lr           @ 2 (1 + refill 1)
    """, 8),
    # PUSH 1+N; BL 3
    ("cortex-m0plus", """
        push {r4, r5, r6, lr}  @ 1 + 4
        movs r4, #1            @ 1
        bl   .+16              @ 3
    """, 9),
    # POP with PC: 3 + N
    ("cortex-m0plus", """
        adds r0, #1            @ 1
        pop  {r4, r5, pc}      @ 3 + 3
    """, 7),
    # LDM 1+N; STM 1+N; unconditional B 2
    ("cortex-m0plus", """
        ldm  r0!, {r1, r2, r3}  @ 1 + 3
        stm  r4!, {r1, r2, r3}  @ 1 + 3
        b    .+32               @ 2
    """, 10),
    # Cortex-M3: MLA 2, MUL 1, LDR 2, STR 1 (write buffer), BX 1 + P (P = 2)
    ("cortex-m3", """
        add  r0, r0, r1        @ 1
        mul  r2, r3, r2        @ 1
        mla  r2, r3, r4, r2    @ 2
        ldr  r0, [r1, #8]      @ 2
        str  r0, [r2]          @ 1
        bx   lr                @ 1 + 2
    """, 10),
    # PUSH/POP {.., pc}: 1 + N (+ P)
    ("cortex-m3", """
        push {r4-r7, lr}       @ 1 + 5
        pop  {r4-r7, pc}       @ 1 + 5 + 2
    """, 14),
    # Cortex-M4: MUL/MLA/SMLAD/SMULL/SMLAL all single cycle, LDR 2, STR 1, BL 1 + P
    ("cortex-m4f", """
        mul   r2, r3, r2       @ 1
        mla   r2, r3, r4, r2   @ 1
        smlad r0, r1, r2, r0   @ 1
        smull r0, r1, r2, r3   @ 1
        smlal r0, r1, r2, r3   @ 1
        sxtb16 r4, r5          @ 1
        ldr   r0, [r1], #4     @ 2
        strb  r0, [r2, #1]     @ 1
        bl    .+64             @ 1 + 2
    """, 12),
    # FPU (FPv4-SP, DDI 0439 table 7-1): VADD/VMUL 1, VMLA 3, VDIV 14, VSQRT 14, VLDR 2
    ("cortex-m4f", """
        vadd.f32  s0, s1, s2   @ 1
        vmul.f32  s3, s4, s5   @ 1
        vmla.f32  s0, s1, s2   @ 3
        vdiv.f32  s6, s7, s8   @ 14
        vsqrt.f32 s9, s10      @ 14
        vldr      s0, [r0]     @ 2
        vstr      s1, [r1]     @ 1 (pipelined behind the VLDR, as STR behind LDR)
    """, 36),
    # Cortex-M33: same single-cycle multiplier and DSP, LDR 2, STR 1, POP {pc} 1 + N + P
    ("cortex-m33", """
        smlad r0, r1, r2, r0   @ 1
        umull r0, r1, r2, r3   @ 1
        ldrh  r0, [r1, #2]     @ 2 + 1: r1 is the UMULL's result (address dependency)
        str   r0, [r2]         @ 1
        pop   {r4, pc}         @ 1 + 2 + 2
    """, 11),
    ("cortex-m33", """
        vfma.f32 s0, s1, s2    @ 3
        vdiv.f32 s3, s4, s5    @ 14
        adds r0, r0, #1        @ 1
    """, 18),
]


@needs_as
@pytest.mark.parametrize(("core", "source", "expected"), EXACT,
                         ids=[f"{c}-{i}" for i, (c, _s, _e) in enumerate(EXACT)])
def test_trm_cycle_counts(core: str, source: str, expected: float, tmp_path: Path) -> None:
    assert cycles(core, source, tmp_path) == pytest.approx(expected)


@needs_as
@pytest.mark.parametrize("core", list(MCPU))
def test_conditional_end_is_priced_per_outcome(core: str, tmp_path: Path) -> None:
    """``subs; bne`` back-edge: 1 + (1 not taken | 1 + P taken).  The block says both
    costs and that its end is conditional; the hook picks one per execution."""
    code = assemble(core, "subs r0, r0, #1\n bne .-2", tmp_path)
    block = model(core).block_cost(disassemble_block(code, 0x08000000))
    p = CORE_PARAMETERS[core]
    assert block.base == to_fixed(p.cpi["alu"] + p.cpi["branch"])
    conditional = END_CONDITIONAL
    if p.branch_mispredict is not None:
        # M7: the hook predicts the outcome; either one costs the misprediction when wrong
        conditional = END_PREDICTED
        assert block.taken == block.not_taken == to_fixed(p.branch_mispredict)
    else:
        assert block.taken == to_fixed(p.branch_refill)
        assert block.not_taken == 0  # a not-taken branch costs its own cycle only
    assert block.end_kind == conditional
    straight = assemble(core, "adds r0, r0, #1", tmp_path)
    assert model(core).block_cost(disassemble_block(straight, 0x08000000)).end_kind == END_NONE
    ret = assemble(core, "adds r0, r0, #1\n bx lr", tmp_path)
    assert model(core).block_cost(disassemble_block(ret, 0x08000000)).end_kind == END_TAKEN
    if core == "cortex-m0plus":
        return  # no CBZ/CBNZ in ARMv6-M
    cbz = assemble(core, "adds r1, #1\n cbz r0, .+8", tmp_path)
    assert model(core).block_cost(disassemble_block(cbz, 0x08000000)).end_kind == conditional


# Cortex-M3 TRM 18.3 / M4 TRM 3.3.2 "Load/store timings": a single load right behind a
# single load or an immediate-offset store pipelines (1 cycle) unless its address needs
# the previous load's result; nothing pipelines behind a register-offset store.
PIPELINED = [
    ("cortex-m4f", """
        ldr r0, [r1]          @ 2
        ldr r2, [r1, #4]      @ 1 (pipelined)
        ldr r3, [r2]          @ 2 (address from the previous load)
        ldrb r4, [r1, #8]     @ 1
        str r4, [r5, #4]      @ 1
        ldrh r6, [r5]         @ 1 (behind an immediate-offset store)
        str r6, [r5, r1]      @ 1
        ldr r7, [r5]          @ 2 (behind a register-offset store)
    """, 11),
    ("cortex-m3", """
        ldr r0, [r1], #4      @ 2
        ldr r2, [r1], #4      @ 1
        adds r0, r0, r2       @ 1
        ldr r3, [r1]          @ 2
    """, 6),
    # M0+ has no load pipelining: 2 each
    ("cortex-m0plus", """
        ldr r0, [r1]          @ 2
        ldr r2, [r1, #4]      @ 2
    """, 4),
]


@needs_as
@pytest.mark.parametrize(("core", "source", "expected"), PIPELINED,
                         ids=[f"{c}-{i}" for i, (c, _s, _e) in enumerate(PIPELINED)])
def test_load_pipelining(core: str, source: str, expected: float, tmp_path: Path) -> None:
    assert cycles(core, source, tmp_path) == pytest.approx(expected)


@needs_as
@pytest.mark.parametrize(("core", "low", "high"), [("cortex-m3", 2, 12), ("cortex-m4f", 2, 12),
                                                   ("cortex-m7", 2, 12), ("cortex-m33", 2, 11)])
def test_divide_within_trm_range(core: str, low: int, high: int, tmp_path: Path) -> None:
    """SDIV/UDIV terminate early depending on operands: the model uses one value inside
    the TRM range."""
    for insn in ("sdiv r0, r1, r2", "udiv r0, r1, r2"):
        assert low <= cycles(core, insn, tmp_path) <= high


@needs_as
def test_m3_long_multiplies_within_trm_range(tmp_path: Path) -> None:
    """M3: UMULL/SMULL 3-5, UMLAL/SMLAL 4-7 (early termination); M4 does them in 1."""
    assert 3 <= cycles("cortex-m3", "umull r0, r1, r2, r3", tmp_path) <= 5
    assert 4 <= cycles("cortex-m3", "smlal r0, r1, r2, r3", tmp_path) <= 7
    assert 4 <= cycles("cortex-m3", "umlal r0, r1, r2, r3", tmp_path) <= 7
    assert cycles("cortex-m4f", "umlal r0, r1, r2, r3", tmp_path) == 1


@needs_as
def test_m7_dual_issue_bounds(tmp_path: Path) -> None:
    """M7 issues two ALU instructions per cycle when independent and one when dependent:
    the effective ALU CPI must lie in [0.5, 1]; loads from TCM/cache are single cycle; a
    correctly predicted taken branch costs no refill, a mispredicted one ~2."""
    eight_adds = "\n".join(f"adds r{i % 4}, r{i % 4}, #1" for i in range(8))
    assert 4 <= cycles("cortex-m7", eight_adds, tmp_path) <= 8
    assert cycles("cortex-m7", "ldr r0, [r1]\n ldr r2, [r3]", tmp_path) == 2
    loop = cycles("cortex-m7", "subs r0, r0, #1\n bne .-2", tmp_path)
    alu = CORE_PARAMETERS["cortex-m7"].cpi["alu"]
    assert alu + 1 <= loop <= alu + 1 + 2


@needs_as
def test_m7_dual_issue_pairs_independent_alu_instructions(tmp_path: Path) -> None:
    """M7 TRM (dual issue): an ALU instruction that names no register its predecessor
    writes issues in the same cycle; pairs do not chain; a dependent chain issues one per
    cycle.  Other cores issue one instruction per cycle either way."""
    pairs = "\n".join(f"adds r{i % 2}, r{i % 2}, #1" for i in range(8))   # r0, r1, r0, ...
    chain = "\n".join("adds r0, r0, #1" for _ in range(8))
    assert cycles("cortex-m7", pairs, tmp_path) == 4
    assert cycles("cortex-m7", chain, tmp_path) == 8
    after_load = "ldr r2, [r3]\n adds r0, r0, #1\n adds r1, r2, #1"  # 1 + 0, then 1
    assert cycles("cortex-m7", after_load, tmp_path) == 2
    assert cycles("cortex-m4f", pairs, tmp_path) == 8


@needs_as
def test_m0plus_has_no_thumb2_and_costs_are_integral(tmp_path: Path) -> None:
    """ARMv6-M timings are whole cycles; every M0+ case above is exact."""
    for core, source, expected in EXACT:
        if core == "cortex-m0plus":
            assert float(cycles(core, source, tmp_path)).is_integer()
            assert expected == int(expected)


@pytest.mark.parametrize(("content", "match"), [
    (b"[1, 2]", "expected a JSON object"),
    (b'{"active_mw": "abc"}', "active_mw must be a number"),
    (b'{"per_register": "x"}', "per_register must be a number"),
    (b'{"mnemonic_cycles": 3}', "mnemonic_cycles must be a table"),
    (b"\xff\xfe", "utf-8"),
])
def test_corrupt_calibration_file_is_a_config_error(tmp_path: Path, content: bytes,
                                                    match: str) -> None:
    from tinymeter.core.boards import load_board
    from tinymeter.core.errors import ConfigError
    from tinymeter.sim.costmodel import cost_model_for, load_calibration

    path = tmp_path / "b.calibration.json"
    path.write_bytes(content)
    datasheet = cost_model_for(load_board("nucleo-l4r5zi"), calibration=tmp_path / "none.json")
    with pytest.raises(ConfigError, match=match):
        load_calibration(datasheet, path)
