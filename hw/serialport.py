"""Serial input from the board: ports with timeouts, and collecting validated reports.

:func:`collect_reports` is the loop every measurement uses: read whatever bytes are
there (bounded by a short poll timeout), feed the :class:`~tinymeter.hw.protocol.ReportParser`,
and stop when enough post-warm-up runs are in, when the firmware faults, when nothing
arrives for ``idle_timeout_s`` or when the overall deadline passes.  It takes any
:class:`ByteSource`, so tests drive it with recorded transcripts and a fake clock.

Ports: :class:`SerialPort` (pyserial, imported lazily: only needed with real boards)
and :class:`FdPort` (a raw POSIX file descriptor, e.g. the pseudo-terminal of the
virtual board, so CI needs no pyserial).
"""

from __future__ import annotations

import logging
import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tinymeter.abi import Fault, ParseStats, Report, ReportParser
from tinymeter.core.errors import FirmwareFaultReport, HardwareError, HardwareTimeout, ToolMissingError
from tinymeter.hw.protocol import keep_runs

log = logging.getLogger(__name__)


class ByteSource(Protocol):
    """Anything that returns the bytes available within *timeout_s* (b"" if none)."""

    def read(self, max_bytes: int, timeout_s: float) -> bytes: ...


class Port(ByteSource, Protocol):
    def discard_input(self) -> None: ...

    def close(self) -> None: ...


class SerialPort:
    """A real serial port via pyserial (8N1, no flow control)."""

    def __init__(self, device: str, baudrate: int = 115200) -> None:
        try:
            import serial  # lazy: only real boards need pyserial
        except ImportError:
            raise ToolMissingError("pyserial is not installed; install it with: pip install pyserial"
                                   ) from None
        self.device = device
        try:
            self._serial: Any = serial.Serial(device, baudrate=baudrate, timeout=0.1)
        except (serial.SerialException, OSError) as exc:
            raise HardwareError(f"cannot open serial port {device}: {exc}") from None

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        self._serial.timeout = timeout_s
        try:
            first = self._serial.read(1)
            if not first:
                return b""
            waiting = min(self._serial.in_waiting, max_bytes - 1)
            return first + (self._serial.read(waiting) if waiting > 0 else b"")
        except OSError as exc:  # SerialException subclasses OSError (cable pulled)
            raise HardwareError(f"serial port {self.device}: {exc}") from None

    def discard_input(self) -> None:
        self._serial.reset_input_buffer()

    def close(self) -> None:
        self._serial.close()


class FdPort:
    """Non-blocking reads from a file descriptor with ``select`` timeouts (ptys, pipes)."""

    def __init__(self, path_or_fd: str | int) -> None:
        if isinstance(path_or_fd, int):
            self.fd, self._owned, self.device = path_or_fd, False, f"fd {path_or_fd}"
        else:
            try:
                self.fd = os.open(path_or_fd, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError as exc:
                raise HardwareError(f"cannot open {path_or_fd}: {exc}") from None
            self._owned, self.device = True, path_or_fd
            _make_raw(self.fd)

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], max(timeout_s, 0.0))
        if not ready:
            return b""
        try:
            return os.read(self.fd, max_bytes)
        except BlockingIOError:
            return b""
        except OSError as exc:  # EIO: the other end of a pty closed
            raise HardwareError(f"{self.device}: {exc}") from None

    def discard_input(self) -> None:
        while self.read(65536, 0.0):
            pass

    def close(self) -> None:
        if self._owned:
            os.close(self.fd)


def _make_raw(fd: int) -> None:
    """No echo, no line editing, no CR/LF translation: bytes as the board sent them."""
    try:
        import termios
        import tty

        tty.setraw(fd, termios.TCSANOW)
    except (ImportError, OSError):  # not a terminal (a pipe or file): nothing to do
        pass


def open_port(device: str, baudrate: int = 115200) -> Port:
    """A pyserial port for a device path; a plain fd port for pseudo-terminals."""
    if device.startswith("/dev/pts/"):
        return FdPort(device)
    return SerialPort(device, baudrate)


@dataclass
class Collected:
    """What :func:`collect_reports` gathered."""

    reports: list[Report] = field(default_factory=list)
    stats: ParseStats = field(default_factory=ParseStats)
    transcript: bytes = b""
    complete: bool = False

    def kept(self, warmup: int) -> list[Report]:
        return keep_runs(self.reports, warmup)


def collect_reports(source: ByteSource, *, runs: int, warmup: int = 0, timeout_s: float = 60.0,
                    idle_timeout_s: float = 10.0, parser: ReportParser | None = None,
                    clock: Callable[[], float] = time.monotonic, poll_s: float = 0.05,
                    raise_on_timeout: bool = True, keep_transcript: bool = True) -> Collected:
    """Read until *runs* post-warm-up reports are complete (or fail with a named cause).

    Every wait is bounded: *idle_timeout_s* without a byte, or *timeout_s* overall,
    raises :class:`HardwareTimeout` (or returns an incomplete :class:`Collected` when
    *raise_on_timeout* is false, so the caller can retry with a reset).  A ``TM1 FAULT``
    line raises :class:`FirmwareFaultReport`.
    """
    parser = parser or ReportParser()
    out = Collected(stats=parser.stats)
    transcript = bytearray()
    start = last_byte = clock()
    while True:
        now = clock()
        if now - start >= timeout_s:
            why = f"no {runs} complete report(s) within {timeout_s:g} s"
            break
        if now - last_byte >= idle_timeout_s:
            why = f"no output for {idle_timeout_s:g} s"
            break
        chunk = source.read(4096, min(poll_s, max(timeout_s - (now - start), 0.0)))
        if not chunk:
            continue
        last_byte = clock()
        if keep_transcript:
            transcript += chunk
        for event in parser.feed(chunk):
            if isinstance(event, Fault):
                out.transcript = bytes(transcript)
                raise FirmwareFaultReport(f"firmware fault on the board: {event.what}")
            out.reports.append(event)
        if len(out.kept(warmup)) >= runs:
            out.complete = True
            out.transcript = bytes(transcript)
            return out
    out.transcript = bytes(transcript)
    s = parser.stats
    detail = (f"{len(out.kept(warmup))} good report(s) after warm-up, {s.discarded_reports} "
              f"discarded, {s.garbled_lines} garbled line(s)"
              + (f", last problem: {s.last_problem}" if s.last_problem else ""))
    if not transcript:
        detail += "; nothing received (wrong port, baud rate, or the board did not reset?)"
    if raise_on_timeout:
        raise HardwareTimeout(f"{why}: {detail}")
    log.warning("%s: %s", why, detail)
    return out
