"""Crash-safe file writes shared by every component that leaves files behind.

Reports, baselines, cached models and built firmware are written to a temporary file
in the destination directory and renamed into place: an interrupted run leaves at
most a hidden ``.tmp`` file, never a truncated file under the final name, and
concurrent writers (test workers, sweep processes) each rename a complete file.

Like a plain ``open(path, "w")``, a new file gets the permissions the umask allows
(``mkstemp`` alone would make it 0600) and a file that is replaced keeps its mode; a
symlinked path is written through (its target is replaced, the link stays).
``-`` as an output path means standard output (:func:`write_output`).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

#: The output path that means "standard output" (``--json -``).
STDOUT = "-"


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (set-and-restore
    elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_path(path: Path) -> Path:
    """Where to write: a symlink's target (so the link survives), else *path*."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def atomic_write(path: Path | str, data: bytes | str) -> None:
    """Write *data* (text is UTF-8 encoded) to *path* atomically; parents are created."""
    path = _final_path(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    try:
        mode = stat.S_IMODE(path.stat().st_mode)  # a replaced file keeps its mode
    except OSError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_copy(src: Path | str, dst: Path | str) -> None:
    """Copy *src* to *dst* atomically."""
    atomic_write(dst, Path(src).read_bytes())


def is_stdout(path: Path | str | None) -> bool:
    """True for the ``-`` output path."""
    return path is not None and str(path) == STDOUT


def write_output(path: Path | str, text: str) -> None:
    """Write a user-requested output: to standard output for ``-``, else atomically."""
    if is_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(path, text)
