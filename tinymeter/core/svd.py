"""CMSIS-SVD device descriptions: every peripheral of an MCU with its registers' reset
values, for the emulator's peripheral map (:mod:`tinymeter.core.devicemap`).

A board file names the description with ``[peripheral_space] svd = ...``: a path
(relative to the board file) or ``pyocd:NAME.svd``, one of the SVD files pyOCD ships
in its package (``pyocd/debug/svd/svd_data.zip``: STM32F0, F103, F41x, F429, F439,
L0x1, L4x2, L4x5, among other vendors' parts).  The board's own ``[[peripheral]]``
entries win over the SVD's for the same name (they add behaviour: follow rules,
timer and GPIO models) and list what the SVD lacks.

Parsing is pure (bytes in, data out) with the standard library's XML parser.  Handled:
``derivedFrom`` peripherals, register ``dim`` arrays, clusters (flattened), reset
values inherited from the device or peripheral level.
"""

from __future__ import annotations

import io
import logging
import zipfile
from importlib import util
from pathlib import Path
from xml.etree import ElementTree

from tinymeter.core.devicemap import Peripheral
from tinymeter.core.errors import ConfigError

log = logging.getLogger(__name__)

PYOCD_PREFIX = "pyocd:"
_MASK32 = 0xFFFFFFFF


def _int(text: str | None, default: int = 0) -> int:
    """SVD scaled non-negative integer: decimal, 0x hex, # binary."""
    if text is None:
        return default
    t = text.strip().lower()
    if t.startswith("#"):
        return int(t[1:].replace("x", "0"), 2)
    if t.startswith("0x"):
        return int(t, 16)
    return int(t, 10)  # decimal, leading zeros allowed ("00000010" in ST's F4 SVDs)


def _registers(parent: ElementTree.Element, base_offset: int, reset: int,
               out: dict[int, int]) -> None:
    """Reset values of the registers (and clusters) under *parent* into *out*, keyed by
    offset from the peripheral base."""
    for node in parent:
        if node.tag not in ("register", "cluster"):
            continue
        offset = base_offset + _int(node.findtext("addressOffset"))
        value = _int(node.findtext("resetValue"), reset)
        count = _int(node.findtext("dim"), 1)
        step = _int(node.findtext("dimIncrement"), 0)
        for i in range(count):
            if node.tag == "cluster":
                _registers(node, offset + i * step, value, out)
            else:
                out[offset + i * step] = value & _MASK32


def parse_svd(data: bytes, where: str = "SVD") -> tuple[Peripheral, ...]:
    """Every peripheral of the device: base, size (address blocks), reset values."""
    try:
        root = ElementTree.parse(io.BytesIO(data)).getroot()
    except ElementTree.ParseError as exc:
        raise ConfigError(f"{where}: not a valid SVD file ({exc})") from None
    device_reset = _int(root.findtext("resetValue"), 0)
    nodes = {p.findtext("name"): p for p in root.iter("peripheral")}
    out = []
    for name, node in nodes.items():
        if not name:
            continue
        source = node
        if node.get("derivedFrom") and node.find("registers") is None:
            source = nodes.get(node.get("derivedFrom"), node)
        base = _int(node.findtext("baseAddress"))
        reset = _int(source.findtext("resetValue"), device_reset)
        values: dict[int, int] = {}
        registers = source.find("registers")
        if registers is not None:
            _registers(registers, 0, reset, values)
        blocks = node.findall("addressBlock") or source.findall("addressBlock")
        size = max((_int(b.findtext("offset")) + _int(b.findtext("size")) for b in blocks),
                   default=max(values, default=0) + 4)
        size = min(max(4, (size + 3) & ~3), 0x10000)
        out.append(Peripheral(name=name, base=base, size=size, section=f"{where}",
                              reset=tuple(sorted((base + off, v) for off, v in values.items()
                                                 if v and off < size))))
    return tuple(sorted(out, key=lambda p: p.base))


def register_map(data: bytes, where: str = "SVD") -> dict[str, tuple[int, dict[str, tuple[int, int]]]]:
    """Peripheral name -> (base, register name -> (offset, reset value)): the SVD by
    name, for cross-checking a board file's registers (clusters flattened, ``dim``
    arrays left as their template name)."""
    try:
        root = ElementTree.parse(io.BytesIO(data)).getroot()
    except ElementTree.ParseError as exc:
        raise ConfigError(f"{where}: not a valid SVD file ({exc})") from None
    device_reset = _int(root.findtext("resetValue"), 0)
    nodes = {p.findtext("name"): p for p in root.iter("peripheral")}
    out = {}
    for name, node in nodes.items():
        if not name:
            continue
        source = node
        if node.get("derivedFrom") and node.find("registers") is None:
            source = nodes.get(node.get("derivedFrom"), node)
        reset = _int(source.findtext("resetValue"), device_reset)
        regs = {}
        for reg in source.iter("register"):
            regs[reg.findtext("name") or ""] = (_int(reg.findtext("addressOffset")),
                                                _int(reg.findtext("resetValue"), reset))
        out[name] = (_int(node.findtext("baseAddress")), regs)
    return out


def pyocd_svd_archive() -> bytes | None:
    """pyOCD's built-in SVD archive (``pyocd/debug/svd/svd_data.zip``), or None when
    pyOCD is not installed.  Located without importing pyOCD (its package imports
    probe libraries this needs none of)."""
    spec = util.find_spec("pyocd")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        try:
            return (Path(folder) / "debug" / "svd" / "svd_data.zip").read_bytes()
        except OSError:
            continue
    return None


def read_svd(spec: str, board_dir: Path | None) -> tuple[bytes, str]:
    """The SVD bytes a board file names, and a label for messages."""
    if spec.startswith(PYOCD_PREFIX):
        name = spec[len(PYOCD_PREFIX):]
        blob = pyocd_svd_archive()
        if blob is None:
            raise ConfigError(f"the board names the SVD {spec!r}, which pyOCD's package "
                              "ships: install pyocd (pip install pyocd)")
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            try:
                return zf.read(name), spec
            except KeyError:
                known = ", ".join(sorted(n for n in zf.namelist() if n.endswith(".svd"))[:40])
                raise ConfigError(f"pyOCD ships no SVD named {name!r} (it has: {known})") \
                    from None
    path = Path(spec)
    if not path.is_absolute() and board_dir is not None:
        path = board_dir / path
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise ConfigError(f"cannot read the SVD file {path}: {exc.strerror or exc}") from None


def merge(svd: tuple[Peripheral, ...],
          board: tuple[Peripheral, ...]) -> tuple[Peripheral, ...]:
    """SVD peripherals, replaced by the board's entry of the same name (or overlapping
    address range), plus the board's others."""
    names = {p.name for p in board}
    kept = [p for p in svd if p.name not in names
            and not any(q.base < p.end and p.base < q.end for q in board)]
    return tuple(sorted([*kept, *board], key=lambda p: p.base))
