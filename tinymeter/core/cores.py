"""Static facts about the Cortex-M cores tinymeter supports.

One table serves the firmware build (compiler flags, FPU), the emulator (Unicorn CPU
model) and the cost model (which instruction classes exist), so a core is described
in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinymeter.core.errors import ConfigError


@dataclass(frozen=True)
class Core:
    """Architecture facts of one Cortex-M core variant."""

    name: str
    #: ``-mcpu`` value for arm-none-eabi-gcc.
    mcpu: str
    #: ``-mfpu`` value, or ``None`` for cores without an FPU.
    fpu: str | None
    #: Has the ARMv7E-M / ARMv8-M DSP extension (SMLAD, SXTB16, QADD...).
    dsp: bool
    #: Name of the ``UC_CPU_ARM_*`` constant selecting the Unicorn CPU model.
    unicorn_cpu: str
    #: ARM architecture profile name, for reports.
    arch: str

    @property
    def has_fpu(self) -> bool:
        return self.fpu is not None

    @property
    def float_abi(self) -> str:
        return "hard" if self.fpu else "soft"

    @property
    def gcc_flags(self) -> tuple[str, ...]:
        """Target flags for both compiling and linking."""
        flags = [f"-mcpu={self.mcpu}", "-mthumb", f"-mfloat-abi={self.float_abi}"]
        if self.fpu:
            flags.insert(2, f"-mfpu={self.fpu}")
        return tuple(flags)


CORES: dict[str, Core] = {
    c.name: c
    for c in (
        Core("cortex-m0plus", "cortex-m0plus", None, False, "UC_CPU_ARM_CORTEX_M0", "armv6-m"),
        Core("cortex-m3", "cortex-m3", None, False, "UC_CPU_ARM_CORTEX_M3", "armv7-m"),
        Core("cortex-m4f", "cortex-m4", "fpv4-sp-d16", True, "UC_CPU_ARM_CORTEX_M4", "armv7e-m"),
        Core("cortex-m7", "cortex-m7", "fpv5-d16", True, "UC_CPU_ARM_CORTEX_M7", "armv7e-m"),
        Core("cortex-m33", "cortex-m33", "fpv5-sp-d16", True, "UC_CPU_ARM_CORTEX_M33", "armv8-m.main"),
    )
}


def get_core(name: str) -> Core:
    """Return the core called *name* or raise a :class:`ConfigError` listing the valid names."""
    try:
        return CORES[name]
    except KeyError:
        raise ConfigError(f"unknown core {name!r}; known cores: {', '.join(CORES)}") from None
