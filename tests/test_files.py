"""Crash-safe writes: an interrupted write leaves nothing behind, a finished one is whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tinymeter import files


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(tmp_path / "m.tflite", b"x" * 100)
    assert list(tmp_path.iterdir()) == []


def test_write_text_bytes_and_copy(tmp_path: Path) -> None:
    files.atomic_write(tmp_path / "a" / "r.json", '{"x": 1}\n')
    assert (tmp_path / "a" / "r.json").read_text() == '{"x": 1}\n'
    files.atomic_write(tmp_path / "b.bin", b"\x00\x01")
    files.atomic_copy(tmp_path / "b.bin", tmp_path / "c.bin")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.bin", "c.bin"]
