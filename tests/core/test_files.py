"""Crash-safe writes: an interrupted write leaves nothing behind, a finished one is whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tinymeter.core import files


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


def test_new_files_honour_the_umask_and_replaced_files_keep_their_mode(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o027)
    try:
        assert files.current_umask() == 0o027
        files.atomic_write(tmp_path / "new.json", "{}")
        assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
    finally:
        os.umask(old)
    (tmp_path / "new.json").chmod(0o604)
    files.atomic_write(tmp_path / "new.json", "[]")
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o604


def test_symlinked_output_is_written_through(tmp_path: Path) -> None:
    target = tmp_path / "real" / "out.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    files.atomic_write(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "real" / "later.json")
    files.atomic_write(dangling, "x")
    assert dangling.is_symlink() and (tmp_path / "real" / "later.json").read_text() == "x"


def test_write_output_dash_is_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files.write_output("-", "hello\n")
    assert capsys.readouterr().out == "hello\n" and list(tmp_path.iterdir()) == []
    files.write_output(tmp_path / "f.txt", "x")
    assert (tmp_path / "f.txt").read_text() == "x"
