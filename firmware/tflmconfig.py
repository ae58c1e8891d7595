"""Registered TFLM libraries: register once per core and kernel set, then use by name.

``tinymeter tflm add LIB --core cortex-m4f --root TFLM_CHECKOUT`` records a prebuilt
library in a TOML file so later commands (``--runtime tflm``) need no paths::

    [[tflm]]
    lib = "/opt/tflm/gen/.../libtensorflow-microlite.a"
    core = "cortex-m4f"
    root = "/opt/tflm/tflite-micro"
    kernels = "cmsis-nn"        # detected from the library's symbols when added

Two places are read, the project's first: ``./tinymeter.toml`` (the current folder)
and the user's ``$XDG_CONFIG_HOME/tinymeter/config.toml`` (``~/.config/...``;
``TINYMETER_CONFIG`` names another file).  Unknown keys are errors.  Parsing and
selection are pure; only :func:`load_registry`/:func:`save_entries` touch files.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinymeter.core.cores import get_core
from tinymeter.core.errors import ConfigError
from tinymeter.core.files import atomic_write
from tinymeter.firmware.tflm import TflmLibrary, detect_kernel_set, include_dirs

PROJECT_FILE = "tinymeter.toml"
KERNEL_SETS = ("cmsis-nn", "reference")
_ENTRY_KEYS = {"lib", "core", "root", "kernels"}


@dataclass(frozen=True)
class TflmEntry:
    """One registered library."""

    lib: Path
    core: str
    root: Path
    kernels: str

    def library(self) -> TflmLibrary:
        """The library with its include folders derived from the checkout."""
        return TflmLibrary.open(self.lib, include_dirs(self.root), self.kernels, self.root)


def user_config_path() -> Path:
    """The user's config file (``TINYMETER_CONFIG`` overrides the XDG location)."""
    if os.environ.get("TINYMETER_CONFIG"):
        return Path(os.environ["TINYMETER_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "tinymeter" / "config.toml"


def parse_entries(raw: dict[str, Any], where: str) -> list[TflmEntry]:
    """The ``[[tflm]]`` entries of a parsed config table; anything unknown is an error."""
    unknown = sorted(set(raw) - {"tflm"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: tflm")
    items = raw.get("tflm", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{where}: tflm must be an array of tables ([[tflm]])")
    out = []
    for n, item in enumerate(items):
        here = f"{where}: tflm[{n}]"
        bad = sorted(set(item) - _ENTRY_KEYS)
        if bad:
            raise ConfigError(f"{here}: unknown key(s) {', '.join(bad)}; allowed: "
                              f"{', '.join(sorted(_ENTRY_KEYS))}")
        missing = sorted(_ENTRY_KEYS - set(item))
        if missing:
            raise ConfigError(f"{here}: missing key(s) {', '.join(missing)}")
        if not all(isinstance(item[k], str) for k in _ENTRY_KEYS):
            raise ConfigError(f"{here}: lib, core, root and kernels must be strings")
        get_core(item["core"])
        if item["kernels"] not in KERNEL_SETS:
            raise ConfigError(f"{here}: kernels must be one of {', '.join(KERNEL_SETS)}")
        out.append(TflmEntry(Path(item["lib"]), item["core"], Path(item["root"]),
                             item["kernels"]))
    return out


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_entries(entries: Sequence[TflmEntry]) -> str:
    """The TOML text of *entries* (what :func:`parse_entries` reads back)."""
    blocks = []
    for e in entries:
        blocks.append("[[tflm]]\n" + "".join(
            f"{k} = {_toml_string(str(v))}\n"
            for k, v in (("lib", e.lib), ("core", e.core), ("root", e.root),
                         ("kernels", e.kernels))))
    return "# TFLM libraries registered with `tinymeter tflm add`\n\n" + "\n".join(blocks)


def read_entries(path: Path) -> list[TflmEntry]:
    """Entries of one config file (none if it does not exist)."""
    if not path.exists():
        return []
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return parse_entries(raw, str(path))


def config_paths(project_dir: Path | None = None) -> list[Path]:
    """Config files in lookup order: the project's, then the user's."""
    return [Path(project_dir or Path.cwd()) / PROJECT_FILE, user_config_path()]


def load_registry(project_dir: Path | None = None) -> list[TflmEntry]:
    """Every registered library, project entries first."""
    return [e for p in config_paths(project_dir) for e in read_entries(p)]


def with_entry(entries: Sequence[TflmEntry], new: TflmEntry) -> list[TflmEntry]:
    """*entries* with *new* added, replacing one for the same core and kernel set."""
    return [e for e in entries if (e.core, e.kernels) != (new.core, new.kernels)] + [new]


def add_library(lib: Path, core: str, root: Path, *, kernels: str | None = None,
                path: Path | None = None) -> TflmEntry:
    """Register *lib* (built from the checkout *root*) for *core* in the config file
    *path* (default the user's); the kernel set is detected unless given."""
    get_core(core)
    lib, root = Path(lib).resolve(), Path(root).resolve()
    if not lib.is_file():
        raise ConfigError(f"TFLM library {lib} does not exist")
    include_dirs(root)  # the checkout must provide the headers
    kernels = kernels or detect_kernel_set(lib)
    if kernels not in KERNEL_SETS:
        raise ConfigError(f"kernels must be one of {', '.join(KERNEL_SETS)}")
    entry = TflmEntry(lib, core, root, kernels)
    target = path or user_config_path()
    atomic_write(target, format_entries(with_entry(read_entries(target), entry)))
    return entry


def remove_library(core: str, kernels: str | None = None, path: Path | None = None) -> int:
    """Unregister the libraries of *core* (one kernel set, or all) from the config file
    *path* (default the user's); returns how many were removed."""
    target = path or user_config_path()
    entries = read_entries(target)
    keep = [e for e in entries if not (e.core == core and kernels in (None, e.kernels))]
    if len(keep) != len(entries):
        atomic_write(target, format_entries(keep))
    return len(entries) - len(keep)


def select(entries: Sequence[TflmEntry], core: str, kernels: str | None = None) -> TflmEntry:
    """The library for *core* (and *kernels*, if given; else CMSIS-NN before reference,
    the first registered of a set winning)."""
    fits = [e for e in entries if e.core == core and (kernels is None or e.kernels == kernels)]
    if not fits:
        what = f"{core}" + (f" with {kernels} kernels" if kernels else "")
        raise ConfigError(f"no TFLM library registered for {what}; register one with "
                          f"`tinymeter tflm add LIB --core {core} --root TFLM_CHECKOUT`")
    return min(fits, key=lambda e: KERNEL_SETS.index(e.kernels))


def libraries_for(entries: Sequence[TflmEntry], core: str) -> list[TflmEntry]:
    """Every registered library of *core*, one per kernel set (project entries win)."""
    seen: dict[str, TflmEntry] = {}
    for e in entries:
        if e.core == core:
            seen.setdefault(e.kernels, e)
    return [seen[k] for k in KERNEL_SETS if k in seen]


def resolve_library(core: str, *, lib: Path | None = None, root: Path | None = None,
                    includes: Sequence[Path] = (), kernels: str | None = None,
                    entries: Sequence[TflmEntry] | None = None) -> TflmLibrary:
    """The TFLM library a command runs: the one given (*lib* with *root* and/or
    *includes*), else the registered one for *core* (*entries*, default the registry)."""
    if lib is not None:
        if root is None and not includes:
            raise ConfigError("--tflm-lib needs the TFLM checkout it was built from "
                              "(--tflm-root DIR) for the headers")
        dirs = [*(include_dirs(root) if root is not None else []), *map(Path, includes)]
        return TflmLibrary.open(Path(lib), dirs, kernels, root)
    if root is not None or includes:
        raise ConfigError("--tflm-root/--tflm-include need --tflm-lib (registered libraries "
                          "know their checkout)")
    chosen = select(load_registry() if entries is None else entries, core, kernels)
    return chosen.library()
