"""The layer order of the package, enforced on its import graph (docs/ARCHITECTURE.md).

Every module of ``tinymeter`` belongs to one layer; a module imports only its own
layer and the layers below it::

    core -> abi -> models -> firmware -> targets (sim, hw, device) -> analysis -> apps -> cli

Read from the source with ``ast`` (nothing is imported), over every import statement:
module level, inside functions and under ``if TYPE_CHECKING`` alike. Also checked:
imports inside functions are only for optional or heavy third-party packages
(TensorFlow and friends), never for tinymeter modules, because a function-level import
is how an upward import or a cycle hides; and the module graph has no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Bottom first: (layer, module prefixes). ``tinymeter`` itself (``__version__``) is core.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("tinymeter.core", "tinymeter")),
    ("abi", ("tinymeter.abi",)),
    ("models", ("tinymeter.models",)),
    ("firmware", ("tinymeter.firmware",)),
    ("targets", ("tinymeter.sim", "tinymeter.hw", "tinymeter.device")),
    ("analysis", ("tinymeter.analysis",)),
    ("apps", ("tinymeter.apps",)),
    ("cli", ("tinymeter.cli",)),
)

#: Third-party packages a function may import: optional extras (``tinymeter[tf]``,
#: ``[dask]``, instrument drivers, the tflite-micro reference), or heavy imports most
#: commands never need (matplotlib ~1 s, scipy), or POSIX-only modules.
LAZY_ALLOWED = frozenset({
    "tensorflow", "keras", "sklearn", "tflite_micro", "dask", "distributed",
    "joulescope", "ppk2_api", "pyocd", "serial",
    "matplotlib", "scipy",
    "termios", "tty",
    "importlib",  # sim's lazy public names; power.py's optional instrument drivers by name
})


@dataclass(frozen=True)
class Import:
    """One imported module name as written in *source* at *line*."""

    source: str
    target: str
    line: int
    in_function: bool
    type_only: bool = False


def package_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name, from pyproject's package-dir mapping."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            if package == "tinymeter" and any(name == p or name.startswith(p + ".")
                                              for p in mapping if p != "tinymeter"):
                continue
            modules.setdefault(name, path)
    return modules


def _function_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(sub) for sub in ast.walk(node) if sub is not node)
    return inside


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (annotations only: never run)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                inside.update(id(sub) for sub in ast.walk(stmt))
    return inside


def imports_of(name: str, path: Path) -> Iterator[Import]:
    """Every module *name* imports; ``from X import Y`` yields ``X.Y`` (resolved later to
    the module if Y is one, else to X)."""
    tree = ast.parse(path.read_text(), str(path))
    inside = _function_nodes(tree)
    typing_only = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno, id(node) in inside,
                             id(node) in typing_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                yield Import(name, f"{module}.{alias.name}", node.lineno, id(node) in inside,
                             id(node) in typing_only)


def resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The package module *target* names (longest known prefix), None if third-party."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def layer_of(module: str) -> int:
    """Index of *module*'s layer (most specific prefix wins); -1 if none claims it."""
    best, best_len = -1, -1
    for index, (_layer, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


MODULES = package_modules()
IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def _where(imp: Import) -> str:
    return f"{MODULES[imp.source].relative_to(ROOT)}:{imp.line}"


def test_the_package_is_found() -> None:
    assert {"tinymeter.core.errors", "tinymeter.models.tflite", "tinymeter.firmware.build",
            "tinymeter.sim.emulator", "tinymeter.hw.protocol", "tinymeter.cli.main"} <= set(MODULES)


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if layer_of(m) < 0] == []


def test_no_module_imports_a_layer_above_it() -> None:
    upward = []
    for imp in IMPORTS:
        target = resolve(imp.target, MODULES)
        if target is not None and layer_of(target) > layer_of(imp.source):
            upward.append(f"{_where(imp)}: {imp.source} ({LAYERS[layer_of(imp.source)][0]}) imports "
                          f"{target} ({LAYERS[layer_of(target)][0]})")
    assert upward == []


def test_functions_import_only_optional_or_heavy_packages() -> None:
    hidden = []
    for imp in IMPORTS:
        if not imp.in_function:
            continue
        if resolve(imp.target, MODULES) is not None or imp.target.startswith("tinymeter"):
            hidden.append(f"{_where(imp)}: {imp.target} (a tinymeter module: import it at the top)")
        elif imp.target.split(".")[0] not in LAZY_ALLOWED:
            hidden.append(f"{_where(imp)}: {imp.target} (not an optional or heavy package)")
    assert hidden == []


def test_the_import_graph_has_no_cycle() -> None:
    """At run time: a type-only import (``if TYPE_CHECKING``) may point back within a
    layer (the cost model names the emulator's ``RunResult``); it never runs."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        if imp.type_only:
            continue
        target = resolve(imp.target, MODULES)
        # a package's __init__ is imported by its modules anyway: not an edge of the design
        if target is not None and target != imp.source and not imp.source.startswith(target + "."):
            graph[imp.source].add(target)
    cycles = [scc for scc in _strongly_connected(graph) if len(scc) > 1]
    assert cycles == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    scc.append(member)
                    if member == node:
                        break
                out.append(sorted(scc))
    return out


@pytest.mark.parametrize("source, target, upward", [
    ("tinymeter.models.zoo", "tinymeter.apps.sweep.nas", True),
    ("tinymeter.sim.costmodel", "tinymeter.core.calibrations", False),
    ("tinymeter.hw.virtual", "tinymeter.sim.emulator", False),
    ("tinymeter.abi", "tinymeter.models.tflite", True),
])
def test_the_layer_map_orders_as_documented(source: str, target: str, upward: bool) -> None:
    assert (layer_of(target) > layer_of(source)) is upward


def test_cycles_and_upward_imports_are_detected(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [s for s in _strongly_connected(graph) if len(s) > 1] == [["a", "b", "c"]]
    module = tmp_path / "m.py"
    module.write_text("from tinymeter.apps.estimate import estimate\n\n"
                      "def f():\n    import tensorflow\n    from . import sibling\n")
    found = list(imports_of("tinymeter.models.m", module))
    assert [(i.target, i.in_function) for i in found] == [
        ("tinymeter.apps.estimate.estimate", False), ("tensorflow", True),
        ("tinymeter.models.sibling", True)]


def test_source_folders_match_pyproject() -> None:
    """tinymeter.SOURCE_FOLDERS (the uninstalled-tree finder) lists pyproject's mapping."""
    import tinymeter

    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert {k: v for k, v in mapping.items() if k != "tinymeter"} == tinymeter.SOURCE_FOLDERS


def test_the_source_tree_imports_without_installation() -> None:
    """From the repository root, without the editable install's finder, every layer imports."""
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in getattr(f, '__name__', '')]\n"
            "import tinymeter.models.tflite, tinymeter.firmware.codegen, tinymeter.hw.protocol\n"
            "import tinymeter.models\n"
            "print(tinymeter.models.__file__)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == ROOT / "models" / "__init__.py"
