"""Add compiled bytecode to the Lambda bundle that `chalice package` wrote.

Lambda's /var/task is read-only and Chalice's zip holds sources only, so every cold start
compiles each module it imports (bench/bundle.py measures the difference). This adds
``__pycache__/*.cpython-311.pyc`` files in "unchecked-hash" mode (no timestamp check, so the
zip's 1980 dates do not matter). It needs the runtime's Python version (3.11 for
``python3.11``): with another version it changes nothing, since that interpreter's bytecode
would never be loaded.

    python infra/aws/precompile.py dist/aws/deployment.zip
"""

from __future__ import annotations

import compileall
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path

RUNTIME = (3, 11)  # the Lambda runtime, python3.11 in the template
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # as Chalice does, for reproducible bytes


def precompile(bundle: Path) -> int:
    """Append the bytecode of every module in the zip; return how many files were added."""
    if sys.version_info[:2] != RUNTIME:
        print(f"precompile: Python {sys.version_info[0]}.{sys.version_info[1]} is not the runtime's; skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        with zipfile.ZipFile(bundle) as archive:
            if any("__pycache__/" in name for name in archive.namelist()):
                return 0  # already done
            archive.extractall(tree)
        compileall.compile_dir(
            tree, quiet=2, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
        added = sorted(tree.rglob("__pycache__/*.pyc"))
        with zipfile.ZipFile(bundle, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in added:
                info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), FIXED_DATE)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return len(added)


def main() -> None:
    for name in sys.argv[1:]:
        print(f"precompile: {precompile(Path(name))} bytecode files added to {name}")


if __name__ == "__main__":
    main()
