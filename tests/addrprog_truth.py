"""Ground truth for address programs: real firmware under Python block + memory hooks.

At every block entry a Python block hook reads all 16 registers and evaluates the
block's address program (LOADs read guest memory at that moment, as the native hook
does); a Python ``UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE`` hook records the accesses
Unicorn actually performs.  Each finished block's two lists are compared: every
resolved access must match the real ones exactly (address, bytes, direction; an
LDM/LDRD/VLDR.64 may arrive as several real accesses tiling its range), conditional
accesses may be absent, unresolved ones are counted.

Unicorn 2.1.4 mis-executes code while a ``UC_HOOK_MEM_READ`` hook is installed (found
here on the reference KWS kernels: after ``ite lt; ldrlt r3, [sp, #168]; sxtbge r3, r3;
b ...`` an instruction of the next block is skipped, the run later faults), so the
memory-hook run is not trustworthy by itself.  Each window is therefore also run on a
second engine with only a block hook (no memory hook) recording the registers at every
block entry; blocks are checked only up to the first block where the two runs disagree.
Slow by design (Python hooks): only for bounded windows.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import unicorn
from unicorn import Uc, arm_const

from tinymeter.sim.addrprog import Access, AddressProgram, address_program, evaluate
from tinymeter.sim.decode import Decoder, Insn, decode_block

REGS = [getattr(arm_const, f"UC_ARM_REG_R{i}") for i in range(13)] + [
    arm_const.UC_ARM_REG_SP, arm_const.UC_ARM_REG_LR, arm_const.UC_ARM_REG_PC]
_PC = arm_const.UC_ARM_REG_PC
STOP = 0xF0000000


@dataclass
class TruthStats:
    """Outcome of traced windows."""

    blocks: int = 0            # blocks compared
    traced: int = 0            # blocks traced (compared or past a divergence)
    accesses: int = 0          # accesses checked (by instruction: one per LDM)
    unresolved: int = 0
    conditional_skipped: int = 0
    divergences: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    #: Unresolved accesses per instruction text (``ldr r0, [r3, #4] @ func``).
    unresolved_by: Counter = field(default_factory=Counter)

    @property
    def unresolved_share(self) -> float:
        return self.unresolved / self.accesses if self.accesses else 0.0


@dataclass
class _Block:
    address: int
    regs: tuple[int, ...]
    insns: tuple[Insn, ...]
    expected: list[Access]
    real: list[tuple[int, int, bool]] = field(default_factory=list)


class Tracer:
    """Traces windows of one engine; *readable(address, size)* says which guest memory
    LOAD ops may read (RAM and flash, never MMIO: peripheral reads have side effects)."""

    def __init__(self, read_code: Callable[[int, int], bytes],
                 describe: Callable[[int], str] = hex,
                 readable: Callable[[int, int], bool] = lambda _a, _n: False) -> None:
        self.read_code = read_code
        self.describe = describe
        self.readable = readable
        self.decoder = Decoder()
        self.cache: dict[tuple[int, int], tuple[tuple[Insn, ...], AddressProgram]] = {}
        self.stats = TruthStats()
        self.window: list[_Block] = []

    def literal(self, address: int, size: int) -> int:
        return int.from_bytes(self.read_code(address, size), "little")

    def program(self, address: int, size: int) -> tuple[tuple[Insn, ...], AddressProgram]:
        key = (address, size)
        if key not in self.cache:
            insns = decode_block(self.read_code(address, size), address, self.decoder)
            self.cache[key] = (insns, address_program(insns, self.literal))
        return self.cache[key]

    def run_window(self, uc: Uc, start: int, count: int, shadow: Uc | None) -> None:
        """Run *count* instructions from *start* on *uc* with the hooks (and on *shadow*
        without a memory hook), then compare the blocks the two runs agree on."""
        self.window = []
        hooks = [uc.hook_add(unicorn.UC_HOOK_BLOCK, self._on_block),
                 uc.hook_add(unicorn.UC_HOOK_MEM_READ | unicorn.UC_HOOK_MEM_WRITE,
                             self._on_mem)]
        uc.ctl_flush_tb()  # blocks translated before the hooks existed carry no hook calls
        try:
            _run(uc, start, count)
        finally:
            for h in hooks:
                uc.hook_del(h)
            uc.ctl_flush_tb()
        agreed = len(self.window) - 1  # the last block may have been cut by the count
        if shadow is not None:
            reference = _shadow_trace(shadow, start, count)
            for k, blk in enumerate(self.window[:agreed]):
                if k >= len(reference) or reference[k] != (blk.address, blk.regs):
                    # the block before k already misbehaved: check neither
                    self.stats.divergences.append(
                        f"block {k} of the window at 0x{blk.address:08x} "
                        f"({self.describe(blk.address)})")
                    agreed = max(k - 1, 0)
                    break
        self.stats.traced += len(self.window)
        for blk in self.window[:agreed]:
            self._check(blk)

    def _on_block(self, uc: Uc, address: int, size: int, _user: object) -> None:
        insns, program = self.program(address, size)
        regs = tuple(uc.reg_read(r) for r in REGS)

        def read_memory(where: int, nbytes: int) -> int | None:
            if not self.readable(where, nbytes):
                return None
            return int.from_bytes(uc.mem_read(where, nbytes), "little")

        self.window.append(_Block(address, regs, insns,
                                  evaluate(program, regs, None, read_memory)))

    def _on_mem(self, _uc: Uc, access: int, address: int, size: int, _value: int,
                _user: object) -> None:
        if self.window:
            self.window[-1].real.append((address, size, access == unicorn.UC_MEM_WRITE))

    # -- comparison -------------------------------------------------------------------
    def _check(self, block: _Block) -> None:
        st = self.stats
        st.blocks += 1
        real, i = block.real, 0
        mem_insns = [x for x in block.insns if _is_access(x)]
        for k, exp in enumerate(block.expected):
            where = mem_insns[k] if k < len(mem_insns) else None
            text = (f"{where.mnemonic} {where.op_str} @ {self.describe(where.address)}"
                    if where else "?")
            if (where is not None and where.name.startswith("strex") and i < len(real)
                    and real[i] == (exp.address, exp.bytes, False)):
                i += 1  # QEMU implements STREX as compare-and-swap: a read the core never does
            got, j = _take(real, i, exp.bytes, exp.is_store)
            if got is None or (exp.resolved and not _covers(got, exp)):
                if exp.conditional:
                    st.conditional_skipped += 1
                    continue  # condition failed: the access did not happen
                st.mismatches.append(
                    f"block 0x{block.address:08x}: {text}: expected "
                    f"{'store' if exp.is_store else 'load'} {exp.bytes} B at "
                    f"0x{exp.address:08x} (resolved={exp.resolved}), real "
                    f"{[(hex(a), s, w) for a, s, w in real[i:i + 4]]}")
                return
            i = j
            st.accesses += 1
            if not exp.resolved:
                st.unresolved += 1
                st.unresolved_by[text] += 1
        if i != len(real):
            st.mismatches.append(
                f"block 0x{block.address:08x} ({self.describe(block.address)}): "
                f"{len(real) - i} real access(es) not predicted: "
                f"{[(hex(a), s, w) for a, s, w in real[i:i + 4]]}")


def _run(uc: Uc, start: int, count: int) -> None:
    """Run until *count* instructions or a CPU exception (a semihosting BKPT at the end
    of the firmware, or a fault: the shadow comparison tells which)."""
    with contextlib.suppress(unicorn.UcError):
        uc.emu_start(start | 1, STOP, count=count)


def _shadow_trace(uc: Uc, start: int, count: int) -> list[tuple[int, tuple[int, ...]]]:
    trace: list[tuple[int, tuple[int, ...]]] = []

    def on_block(uc: Uc, address: int, _size: int, _user: object) -> None:
        trace.append((address, tuple(uc.reg_read(r) for r in REGS)))

    hook = uc.hook_add(unicorn.UC_HOOK_BLOCK, on_block)
    uc.ctl_flush_tb()
    try:
        _run(uc, start, count)
    finally:
        uc.hook_del(hook)
        uc.ctl_flush_tb()
    return trace


def _is_access(insn: Insn) -> bool:
    from tinymeter.sim.addrprog import _HINTS, _MEMORY_CLASSES  # same rule as the compiler

    return insn.mem is not None or (insn.klass in _MEMORY_CLASSES and insn.name not in _HINTS)


def _take(real: list[tuple[int, int, bool]], i: int, nbytes: int, store: bool
          ) -> tuple[list[tuple[int, int, bool]] | None, int]:
    """Real accesses from *i* summing to *nbytes* in one direction, or None."""
    got, total = [], 0
    while total < nbytes and i < len(real) and real[i][2] == store:
        got.append(real[i])
        total += real[i][1]
        i += 1
    return (got, i) if total == nbytes else (None, i)


def _covers(got: list[tuple[int, int, bool]], exp: Access) -> bool:
    """The real accesses tile exactly [exp.address, exp.address + exp.bytes)."""
    cursor = exp.address
    for address, size, _store in sorted(got):
        if address != cursor:
            return False
        cursor += size
    return cursor == exp.address + exp.bytes


def pc_of(uc: Uc) -> int:
    return uc.reg_read(_PC)
