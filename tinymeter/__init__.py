"""tinymeter: how fast, how big and how power-hungry a neural network is on a Cortex-M.

The sub-packages live in top-level folders of the source tree (pyproject's
``package-dir``: ``models/`` is ``tinymeter.models``, ``firmware/``, ``sim/``, ``hw/``
likewise). An installed tinymeter (wheel or editable) finds them through its
installation. In a source checkout that is not installed -- ``python -c "import
tinymeter.models"`` or a notebook started at the repository root -- the finder below
maps them the same way; it is appended last, so any installation wins, and it only
exists where ``pyproject.toml`` sits next to this package (never in site-packages).
The folders are listed here, not read from pyproject (no TOML parsing on import);
``tests/project/test_layers.py`` checks both lists agree.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from importlib.util import spec_from_file_location
from pathlib import Path
from types import ModuleType

__version__ = "0.1.0"

#: Sub-package -> its folder in the source tree (pyproject ``[tool.setuptools] package-dir``).
SOURCE_FOLDERS = {"tinymeter.models": "models", "tinymeter.firmware": "firmware",
                  "tinymeter.sim": "sim", "tinymeter.hw": "hw"}


class SourceTreeFinder(MetaPathFinder):
    """Finds the mapped sub-packages of an uninstalled source tree at *root*."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        folder = SOURCE_FOLDERS.get(fullname)
        if folder is None:
            return None
        init = self.root / folder / "__init__.py"
        if not init.is_file():
            return None
        return spec_from_file_location(fullname, init, submodule_search_locations=[str(init.parent)])


def _add_source_tree_finder() -> None:
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        return  # installed from a wheel: the sub-packages sit inside this package
    if not any(isinstance(f, SourceTreeFinder) for f in sys.meta_path):
        sys.meta_path.append(SourceTreeFinder(root))


_add_source_tree_finder()
