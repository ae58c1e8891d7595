"""Package discovery and the native Unicorn counting hook.

The sub-packages live in top-level folders mapped by ``[tool.setuptools] package-dir``
in pyproject.toml. setuptools' own discovery cannot follow such a mapping, so the
package list is discovered here from that same mapping: every folder with an
``__init__.py`` below a mapped folder is a package, and a new sub-package cannot be
left out of the wheel by a forgotten list entry.

The hook and the native peripheral registers (``_periph``) are plain C shared objects
that Unicorn calls directly (registered through ``uc_hook_add`` / ``uc_mmio_map`` via
ctypes); they are packaged as extension modules only so that setuptools compiles and
installs them with the package.
"""

import tomllib
from pathlib import Path

from setuptools import Extension, find_packages, setup

HERE = Path(__file__).resolve().parent


def discover_packages() -> list[str]:
    """Every package below each folder of the pyproject ``package-dir`` mapping."""
    config = tomllib.loads((HERE / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    packages = []
    for name, folder in mapping.items():
        packages.append(name)
        subs = find_packages(str(HERE / folder))
        packages += [f"{name}.{sub}" for sub in subs if f"{name}.{sub}" not in mapping]
    return sorted(set(packages))


setup(
    packages=discover_packages(),
    ext_modules=[
        Extension(
            "tinymeter.sim._counthook",
            sources=["sim/native/counthook.c"],
            depends=["sim/native/tm_addrprog.h"],
            include_dirs=["sim/native"],
            extra_compile_args=["-O2", "-std=c11"],
        ),
        Extension(
            "tinymeter.sim._periph",
            sources=["sim/native/periph.c"],
            extra_compile_args=["-O2", "-std=c11"],
        ),
    ],
)
