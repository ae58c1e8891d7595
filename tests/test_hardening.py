"""Issue 13 reproducers: each bad input ends in one clear error (or a right answer).

Library calls raise a :class:`~tinymeter.errors.TinymeterError` subclass naming the
cause; the CLI prints one ``error:`` line and exits 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tinymeter.cli import main
from tinymeter.errors import MissingDependencyError


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> str:
    """Run the CLI in-process; assert exit 2 and one ``error:`` line holding *fragments*."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for f in fragments:
        assert f in err[0], err[0]
    return err[0]


# -- packaging -----------------------------------------------------------------------------


def test_zoo_build_without_tensorflow(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TINYMETER_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import raises ImportError
    _one_error(capsys, ["zoo", "build", "lenet"], "needs TensorFlow", "tinymeter[tf]")


def test_import_tf_error_type(monkeypatch) -> None:
    from tinymeter.models.convert import import_tf, seed_everything

    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(MissingDependencyError):
        import_tf()
    with pytest.raises(MissingDependencyError):
        seed_everything(0)
