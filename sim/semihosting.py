"""Arm semihosting (the subset firmware run under tinymeter uses), as pure logic.

The handler only sees a tiny memory interface and injected clocks, so it can be unit
tested without Unicorn and behaves identically whatever drives it.  It never touches
host files: SYS_OPEN only knows the console ``:tt``, because firmware under
measurement has no business reading or writing the host file system.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

#: ``BKPT 0xAB`` encoded in Thumb: the semihosting trap instruction.
SEMIHOSTING_BKPT = 0xBEAB

SYS_OPEN = 0x01
SYS_CLOSE = 0x02
SYS_WRITEC = 0x03
SYS_WRITE0 = 0x04
SYS_WRITE = 0x05
SYS_READ = 0x06
SYS_READC = 0x07
SYS_ISERROR = 0x08
SYS_ISTTY = 0x09
SYS_SEEK = 0x0A
SYS_FLEN = 0x0C
SYS_CLOCK = 0x10
SYS_TIME = 0x11
SYS_ERRNO = 0x13
SYS_GET_CMDLINE = 0x15
SYS_HEAPINFO = 0x16
SYS_EXIT = 0x18
SYS_EXIT_EXTENDED = 0x20

ADP_STOPPED_APPLICATION_EXIT = 0x20026
_ADP_STOPPED_FIRST = 0x20000
_ADP_STOPPED_LAST = 0x20031

#: Console handles handed out for ``:tt`` (mode < 4 read, < 8 write, else append/stderr).
#: They are the pre-opened 0/1/2 of QEMU and OpenOCD, because bare-metal code (our own
#: ``platform/cortexm.c`` included) writes to handle 1 without opening ``:tt`` first.
HANDLE_STDIN = 0
HANDLE_STDOUT = 1
HANDLE_STDERR = 2

_EBADF = 9
_ENOENT = 2
_MAX_STRING = 1 << 16


class Memory(Protocol):
    """What the handler needs from the target: byte reads and writes."""

    def read(self, address: int, size: int) -> bytes: ...

    def write(self, address: int, data: bytes) -> None: ...


class SemihostingError(Exception):
    """The firmware made a semihosting call the handler does not support."""


class Semihosting:
    """Executes semihosting operations and accumulates console output and the exit code.

    ``handle(op, arg)`` returns the value for r0.  After SYS_EXIT / SYS_EXIT_EXTENDED,
    ``exited`` is true and ``exit_code`` holds the code (0 for a normal
    ``ADP_Stopped_ApplicationExit``); the caller stops the CPU.
    """

    def __init__(self, memory: Memory, *, heap_info: tuple[int, int, int, int] = (0, 0, 0, 0),
                 stdin: bytes = b"", clock: Callable[[], float] = time.monotonic,
                 wall_time: Callable[[], float] = time.time) -> None:
        self._mem = memory
        self._heap_info = heap_info
        self._stdin = bytearray(stdin)
        self._clock = clock
        self._wall_time = wall_time
        self._start = clock()
        self._errno = 0
        self._out = bytearray()
        self.exit_code: int | None = None
        self.calls = 0

    @property
    def exited(self) -> bool:
        return self.exit_code is not None

    @property
    def stdout_bytes(self) -> bytes:
        return bytes(self._out)

    @property
    def stdout(self) -> str:
        return self._out.decode("utf-8", errors="replace")

    def last_line(self) -> str:
        """Last non-empty console line, for error messages."""
        lines = [ln for ln in self.stdout.splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    # -- memory helpers --------------------------------------------------------------
    def _words(self, address: int, n: int) -> tuple[int, ...]:
        return struct.unpack(f"<{n}I", self._mem.read(address, 4 * n))

    def _cstring(self, address: int) -> bytes:
        out = bytearray()
        while len(out) < _MAX_STRING:
            chunk = self._read_some(address + len(out), 64)
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                return bytes(out)
            out += chunk
        return bytes(out)

    def _read_some(self, address: int, size: int) -> bytes:
        """Read up to *size* bytes, shrinking at a mapping edge (strings near the end of RAM)."""
        while True:
            try:
                return self._mem.read(address, size)
            except Exception:
                if size == 1:
                    raise
                size = 1

    def _emit(self, data: bytes) -> None:
        self._out += data

    def emit(self, data: bytes) -> None:
        """Append console output from another channel (the emulated board UART), so one
        stdout keeps semihosting and UART output in program order."""
        self._emit(data)

    # -- dispatch --------------------------------------------------------------------
    def handle(self, op: int, arg: int) -> int:
        """Execute operation *op* with parameter *arg* (r1); returns the new r0."""
        self.calls += 1
        handler = self._ops().get(op)
        if handler is None:
            raise SemihostingError(f"unsupported semihosting operation 0x{op:02x}")
        result = handler(arg) & 0xFFFFFFFF
        log.debug("semihosting op 0x%02x arg 0x%08x -> 0x%x", op, arg, result)
        return result

    def _ops(self) -> dict[int, Callable[[int], int]]:
        return {
            SYS_OPEN: self._open, SYS_CLOSE: lambda _a: 0, SYS_WRITEC: self._writec,
            SYS_WRITE0: self._write0, SYS_WRITE: self._write, SYS_READ: self._read,
            SYS_READC: self._readc, SYS_ISERROR: self._iserror, SYS_ISTTY: self._istty,
            SYS_SEEK: lambda _a: 0, SYS_FLEN: lambda _a: 0, SYS_CLOCK: self._clock_cs,
            SYS_TIME: lambda _a: int(self._wall_time()), SYS_ERRNO: lambda _a: self._errno,
            SYS_GET_CMDLINE: self._cmdline, SYS_HEAPINFO: self._heapinfo,
            SYS_EXIT: self._exit, SYS_EXIT_EXTENDED: self._exit_extended,
        }

    def _open(self, arg: int) -> int:
        name_ptr, mode, length = self._words(arg, 3)
        name = self._mem.read(name_ptr, length) if length else b""
        if name != b":tt":
            self._errno = _ENOENT
            log.warning("firmware tried to open host file %r; refused", name)
            return -1
        if mode < 4:
            return HANDLE_STDIN
        return HANDLE_STDOUT if mode < 8 else HANDLE_STDERR

    def _writec(self, arg: int) -> int:
        self._emit(self._mem.read(arg, 1))
        return 0

    def _write0(self, arg: int) -> int:
        self._emit(self._cstring(arg))
        return 0

    def _write(self, arg: int) -> int:
        handle, buf, length = self._words(arg, 3)
        if handle not in (HANDLE_STDOUT, HANDLE_STDERR):
            self._errno = _EBADF
            return length  # nothing written
        self._emit(self._mem.read(buf, length) if length else b"")
        return 0

    def _read(self, arg: int) -> int:
        handle, buf, length = self._words(arg, 3)
        if handle != HANDLE_STDIN:
            self._errno = _EBADF
            return -1
        n = min(length, len(self._stdin))
        if n:
            self._mem.write(buf, bytes(self._stdin[:n]))
            del self._stdin[:n]
        return length - n

    def _readc(self, _arg: int) -> int:
        if not self._stdin:
            return -1
        return self._stdin.pop(0)

    def _iserror(self, arg: int) -> int:
        status = struct.unpack("<i", self._mem.read(arg, 4))[0]
        return 1 if status < 0 else 0

    def _istty(self, arg: int) -> int:
        (handle,) = self._words(arg, 1)
        return 1 if handle in (HANDLE_STDIN, HANDLE_STDOUT, HANDLE_STDERR) else 0

    def _clock_cs(self, _arg: int) -> int:
        return int((self._clock() - self._start) * 100)

    def _cmdline(self, arg: int) -> int:
        buf, length = self._words(arg, 2)
        if length < 1:
            return -1
        self._mem.write(buf, b"\0")
        self._mem.write(arg + 4, struct.pack("<I", 0))
        return 0

    def _heapinfo(self, arg: int) -> int:
        (block,) = self._words(arg, 1)
        self._mem.write(block, struct.pack("<4I", *self._heap_info))
        return 0

    def _exit(self, arg: int) -> int:
        # AArch32 SYS_EXIT passes the reason code itself in r1.  A reason of
        # ADP_Stopped_ApplicationExit means success.  Firmware that wants a code
        # either passes it directly (any non-ADP value), or points r1 at an
        # AArch64-style {reason, subcode} block; both are honoured.
        if arg == ADP_STOPPED_APPLICATION_EXIT:
            self.exit_code = 0
        elif _ADP_STOPPED_FIRST <= arg <= _ADP_STOPPED_LAST:
            self.exit_code = arg
        else:
            block = self._try_block(arg)
            if block is not None:
                self.exit_code = _code_from_block(*block)
            else:
                self.exit_code = _signed(arg)
        return 0

    def _exit_extended(self, arg: int) -> int:
        reason, subcode = self._words(arg, 2)
        self.exit_code = _code_from_block(reason, subcode)
        return 0

    def _try_block(self, arg: int) -> tuple[int, int] | None:
        try:
            reason, subcode = self._words(arg, 2)
        except Exception:
            return None
        if _ADP_STOPPED_FIRST <= reason <= _ADP_STOPPED_LAST:
            return reason, subcode
        return None


def _code_from_block(reason: int, subcode: int) -> int:
    """Exit code of a {reason, subcode} block: the subcode, never 0 for an abnormal reason."""
    code = _signed(subcode)
    if reason == ADP_STOPPED_APPLICATION_EXIT:
        return code
    return code or reason


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value
