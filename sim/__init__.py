"""tinymeter.sim: run firmware in Unicorn and count instructions per layer.

Public surface: :class:`Emulator` / :class:`RunResult` (engine), :class:`ElfImage`
(ELF view), :class:`BlockTable` / :class:`BlockProfile` / :func:`analyze`
(instruction statistics).  Imported lazily by attribute so that pure modules
(``sim.elf``, ``sim.semihosting``, ``sim.blocks``) do not drag in Unicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinymeter.sim.blocks import BlockProfile, BlockTable, analyze
    from tinymeter.sim.classes import CLASSES
    from tinymeter.sim.elf import ElfImage
    from tinymeter.sim.emulator import Emulator, RunResult

__all__ = ["CLASSES", "DEFAULT_BUDGET_INSTRUCTIONS", "DEFAULT_TIMEOUT_S", "BlockProfile",
           "BlockTable", "ElfImage", "Emulator", "RunResult", "analyze"]

#: Limits of one emulated run unless the caller says otherwise: far above any model
#: tinymeter supports (~0.1 G instructions), low enough to call a hung firmware hung.
#: Defined here, not in ``emulator``, so the CLI can show them without importing Unicorn.
DEFAULT_BUDGET_INSTRUCTIONS = 2_000_000_000
DEFAULT_TIMEOUT_S = 600.0

_HOMES = {
    "CLASSES": "classes", "BlockProfile": "blocks", "BlockTable": "blocks", "analyze": "blocks",
    "ElfImage": "elf", "Emulator": "emulator", "RunResult": "emulator",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tinymeter.sim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"tinymeter.sim.{home}"), name)
