"""Type-check the whole `tinymeter` package as it is installed (``make test`` runs it).

The sub-packages live in top-level folders that pyproject's ``package-dir`` maps into
``tinymeter`` (``models/`` is ``tinymeter.models``, ...). mypy cannot follow that
mapping, nor the editable install's import hook, so this script stages the installed
layout with symlinks in ``.mypy_cache/stage`` (a fixed place, so mypy's incremental
cache stays valid between runs), runs ``mypy -p tinymeter`` there with the
repository's configuration, and prints the errors with the repository's paths.
Exit status: mypy's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage(dest: Path) -> dict[str, str]:
    """Symlink the package layout under *dest*; returns staged prefix -> repo prefix."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    top = dest / "tinymeter"
    top.mkdir()
    for entry in (ROOT / mapping["tinymeter"]).iterdir():
        (top / entry.name).symlink_to(entry)
    prefixes = {"tinymeter/": f"{mapping['tinymeter']}/"}
    for package, folder in mapping.items():
        if package == "tinymeter":
            continue
        rel = package.replace(".", "/")
        (dest / rel).symlink_to(ROOT / folder, target_is_directory=True)
        prefixes[f"{rel}/"] = f"{folder}/"
    return prefixes


def main() -> int:
    cache = ROOT / ".mypy_cache"
    staged = cache / "stage"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    prefixes = stage(staged)
    env = {**os.environ, "MYPY_CACHE_DIR": str(cache / "data")}
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                           str(ROOT / "pyproject.toml"), "-p", "tinymeter", *sys.argv[1:]],
                          cwd=staged, env=env, capture_output=True, text=True, check=False)
    # longest staged prefix first: tinymeter/models/ before tinymeter/
    order = sorted(prefixes, key=len, reverse=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        for staged in order:
            if line.startswith(staged):
                line = prefixes[staged] + line[len(staged):]
                break
        print(line)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
