"""The web app as static files (`make web-dist`): exactly what `bocage serve` answers under /app/.

    python infra/web_dist.py [OUT]        # OUT defaults to dist/web

OUT/ gets every file of web/ the gateway would serve (known types, no dot-files) and
OUT/vendor/<name> for each file of the gateway's own allow-list into node_modules
(bocage/local/static_files.py: VENDOR_FILES); OUT/sw.js is stamped with the shell's file list
and version exactly as the gateway stamps it (bocage/local/app_shell.py). Upload OUT/ to the
app's bucket (docs/deploy-aws.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bocage.local.app_shell import stamp_worker
from bocage.local.static_files import SERVICE_WORKER, StaticFiles

WEB_APP = StaticFiles.from_env()  # BOCAGE_WEB_DIR, as `bocage serve` reads it
WEB_DIR = WEB_APP.web_dir


def served_web_files() -> dict[str, Path]:
    """Relative path under /app/ -> file of web/, for each file the gateway serves as itself."""
    return WEB_APP.web_files()


def vendor_files() -> dict[str, Path]:
    """vendor/<name> -> its file in node_modules, as the gateway resolves it."""
    return WEB_APP.vendor_files()


def build(out: Path) -> list[str]:
    """Replace OUT with the app's files; the relative paths written, sorted."""
    files = {**served_web_files(), **vendor_files()}
    if "index.html" not in files:
        raise FileNotFoundError(f"{WEB_DIR / 'index.html'} is missing")
    if out.exists():
        resolved = out.resolve()
        if WEB_DIR.resolve().is_relative_to(resolved) or (
            any(out.iterdir()) and not (out / "index.html").is_file()
        ):
            raise FileExistsError(f"{out} is not an earlier web-dist: refusing to replace it")
        shutil.rmtree(out)
    for relative, source in files.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative == SERVICE_WORKER:  # the same stamp (shell list, version) bocage serve writes
            target.write_bytes(stamp_worker(WEB_APP, source.read_bytes()))
        else:
            shutil.copyfile(source, target)
    return sorted(files)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("dist/web")
    try:
        written = build(out)
    except (FileNotFoundError, FileExistsError) as error:
        print(f"web-dist: {error}", file=sys.stderr)
        return 1
    print(f"web-dist: {len(written)} files in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
