"""Crash-safe file writes shared by every component that leaves files behind.

Reports, baselines, cached models and built firmware are written to a temporary file
in the destination directory and renamed into place: an interrupted run leaves at
most a hidden ``.tmp`` file, never a truncated file under the final name, and
concurrent writers (test workers, sweep processes) each rename a complete file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path | str, data: bytes | str) -> None:
    """Write *data* (text is UTF-8 encoded) to *path* atomically; parents are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
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
