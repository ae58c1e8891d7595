"""Register dependencies inside a block that stall an in-order Cortex-M pipeline.

Why a separate pass next to :mod:`.blocks`: the per-class CPI of the TRMs assumes
independent neighbours, but NN kernels chain a pointer increment into the next load and
a multiply-accumulate into the next use.  The cores' manuals state which chains cost an
extra cycle; this module finds them once per distinct block (statically: the dependency
lies between neighbouring instructions of the decoded block) and counts them, and the
cost model prices each count with a parameter of the core (``sim.costmodel``):

* **address generation** (``agu``): a load or store whose base or index register the
  immediately preceding data-processing instruction (ALU, multiply, DSP) wrote.  Cortex-M3
  TRM (DDI 0337I section 3.3) and Cortex-M4 TRM (DDI 0439 section 3.3.2): "Any load or
  store that generates an address dependent on the result of a preceding data processing
  operation stalls the pipeline for an additional cycle ... no forwarding path".  A load
  feeding the next load's address is the load-pipelining rule (:mod:`.blocks`), not this.
* **narrow load use** (``narrow_load_use``): an instruction reading the result of the
  byte or halfword load right before it (LDRB/LDRH/LDRSB/LDRSH: their data are aligned
  and extended a stage later than a word's on the Cortex-M7).
* **FPU result use** (``fp_dependent``): an instruction reading the result of the
  floating-point arithmetic instruction right before it (add, subtract, multiply, the
  multiply-accumulates, conversions, divide, square root).  Cortex-M4 TRM (DDI 0439 section
  7.2.3): those instructions "take one cycle longer if their result is consumed by the
  following instruction".  A multiply-accumulate reading the previous result only as its
  addend (the accumulator chain of a dot product) is not counted: the MAC reads its addend
  a cycle later (GCC's Cortex-M4 FPU pipeline description: the bypass of FP results into
  the MAC addend).
* **VLDR/VSTR pipelining** (``vldr_pipelined``, ``vstr_pipelined``): a single-precision
  VLDR behind a load or store it pipelines with (the same rule as LDR, Cortex-M4 TRM
  3.3.2: the FPU loads through the core's load/store unit), and a VSTR right behind a
  load (as STR behind LDR); a VLDM of one single-precision register (what GCC emits for a
  post-incremented float load: 1 + N = 2 cycles unpipelined, table 7-1) pipelines like
  VLDR (``vldm_pipelined``).  That single FPU loads pipeline like LDR is the two-stage
  load reservation of GCC's Cortex-M4 FPU pipeline description (``cortex-m4-fpu.md``);
  the TRM's FPU table gives the unpipelined cycles only.

Dependencies across a block boundary are not counted: a block ends at a branch, whose
refill drains the pipeline, or where the emulator cut straight code (rare: 1 KiB pages).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinymeter.sim.classes import CLASS_INDEX

#: Data-processing classes whose result a following address calculation waits for.
_DATA_PROCESSING = frozenset(CLASS_INDEX[c] for c in ("alu", "mul", "mac", "mul64"))
_NARROW_LOADS = frozenset(("ldrb", "ldrh", "ldrsb", "ldrsh"))
_WORD_LOADS = frozenset(("ldr",))
#: FPU data-processing instructions whose result is late for the next instruction
#: (capstone names; ``vmov`` between registers and constants are moves, not arithmetic).
FP_ARITHMETIC = frozenset((
    "vadd", "vsub", "vmul", "vnmul", "vdiv", "vsqrt", "vabs", "vneg", "vcvt", "vcvtr",
    "vcvta", "vcvtn", "vcvtp", "vcvtm", "vcvtb", "vcvtt", "vmla", "vmls", "vnmla", "vnmls",
    "vfma", "vfms", "vfnma", "vfnms", "vrinta", "vrintn", "vrintp", "vrintm", "vrintr",
    "vrintx", "vrintz", "vmaxnm", "vminnm", "vsel"))
#: Multiply-accumulates: the destination is also the addend they read.
FP_MAC = frozenset(["vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"])
#: FP instructions that read every FP register they name (stores, compares).
_FP_READS_ALL = frozenset(["vstr", "vstmia", "vstmdb", "vpush", "vcmp", "vcmpe"])


def fp_registers(text: str) -> frozenset[int]:
    """Single-precision register numbers an operand text names (``d<n>`` = s2n, s2n+1)."""
    out: set[int] = set()
    for tok in text.replace("{", " ").replace("}", " ").replace(",", " ").replace("[", " ").split():
        if len(tok) > 1 and tok[0] in "sd" and tok[1:].isdigit():
            n = int(tok[1:])
            out.update((n,) if tok[0] == "s" else (2 * n, 2 * n + 1))
    return frozenset(out)


@dataclass(frozen=True)
class Hazards:
    """Dependency counts of one block (per execution)."""

    agu: int = 0
    narrow_load_use: int = 0
    fp_dependent: int = 0
    vldr_pipelined: int = 0
    vstr_pipelined: int = 0
    vldm_pipelined: int = 0


class HazardTracker:
    """Steps through a block's instructions and counts the dependencies above.

    ``step`` takes capstone's name, the operand text, the class, the core registers the
    instruction reads and writes (:mod:`.decode`'s facts) and its address registers."""

    def __init__(self) -> None:
        self.agu = self.narrow = self.fp = self.vldr = self.vstr = self.vldm = 0
        #: previous instruction: (name, class, core registers written, FP registers written)
        self._prev: tuple[str, int, frozenset[int], frozenset[int]] | None = None
        #: the previous instruction is a load or store a VLDR may pipeline behind (kind,
        #: core registers it wrote)
        self._pipe_from: tuple[str, frozenset[int]] | None = None

    def step(self, name: str, op_str: str, cls: int, read: frozenset[int],
             written: frozenset[int], address: frozenset[int]) -> None:
        prev = self._prev
        fp_dest = fp_registers(op_str.split(",", 1)[0]) if name in FP_ARITHMETIC else frozenset()
        if prev is not None:
            p_name, p_cls, p_written, p_fp = prev
            if address and p_cls in _DATA_PROCESSING and address & p_written:
                self.agu += 1
            if p_name in _NARROW_LOADS and read & p_written:
                self.narrow += 1
            if p_fp:
                if name in _FP_READS_ALL:
                    sources = fp_registers(op_str)
                else:  # the first operand is the destination (a MAC's addend: bypassed)
                    sources = fp_registers(op_str.split(",", 1)[1]) if "," in op_str else frozenset()
                if sources & p_fp:
                    self.fp += 1
        # VLDR (single precision) pipelines behind a load or store like LDR (not behind a
        # load that produced its address, nor a register-offset store); VSTR behind a load
        single_fp = name in ("vldr", "vstr") and op_str[:1] == "s"
        # VLDM of one single-precision register: GCC's post-increment VLDR
        single_vldm = name in ("vldmia", "vldmdb") and "{s" in op_str \
            and len(fp_registers(op_str)) == 1
        after = self._pipe_from is not None and not (address & self._pipe_from[1])
        if single_fp and after:
            if name == "vldr":
                self.vldr += 1
            elif self._pipe_from is not None and self._pipe_from[0] == "load":
                self.vstr += 1
        elif single_vldm and after:
            self.vldm += 1
        if (name in _WORD_LOADS or name in _NARROW_LOADS or (single_fp and name == "vldr")
                or single_vldm) \
                and not op_str.startswith("pc"):
            self._pipe_from = ("load", written)
        elif (name in ("str", "strb", "strh") or (single_fp and name == "vstr")) \
                and len(address) < 2:
            self._pipe_from = ("store", frozenset())
        else:
            self._pipe_from = None
        self._prev = (name, cls, written, fp_dest)

    def reset(self) -> None:
        """An instruction the decoder could not read: no dependency across it."""
        self._prev = None
        self._pipe_from = None

    def result(self) -> Hazards:
        return Hazards(self.agu, self.narrow, self.fp, self.vldr, self.vstr, self.vldm)
