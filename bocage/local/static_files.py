"""The web app at ``/app/``: the files of the web directory and an allow-list of its npm libraries.

Where on AWS CloudFront serves the built app (infra/web_dist.py), ``bocage serve`` serves
``BOCAGE_WEB_DIR`` and the ``node_modules`` next to it, with the same security headers.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

from bocage.local.answers import Answer, json_answer
from chalicelib.settings import Settings

APP_PREFIX = "/app"
#: /app/vendor/<name>: only these files of node_modules, never a directory listing or a path.
VENDOR_FILES = {
    "nacl-fast.min.js": "tweetnacl/nacl-fast.min.js",
    "qrcode.mjs": "qrcode-generator/dist/qrcode.mjs",
}
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}
#: The service worker: at /app/ so its default scope is the whole app (no Service-Worker-Allowed).
SERVICE_WORKER = "sw.js"
STATIC_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # no dot-files, no "..", no encoded tricks


def _ws_source() -> str | None:
    """The WebSocket URL the app connects to (no query), for its Content-Security-Policy.

    With ``bocage serve`` it is on the page's own host and port (``/ws``); it is still named,
    since browsers differ on whether ``'self'`` covers ``ws:`` and ``wss:``.
    """
    from chalicelib import wiring

    current = wiring.current()  # never build a container just for this
    url = current.settings.ws_url if current is not None else None
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def app_security_headers() -> dict[str, str]:
    """A strict policy: this origin only (scripts, styles, images, fetches) and the WebSocket."""
    connect = "'self'" + (f" {ws}" if (ws := _ws_source()) else "")
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob:",  # photos decrypted on the device
            "font-src 'self'",
            f"connect-src {connect}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        # The camera and microphone for calls, from the app's own pages only (docs/calls.md).
        "Permissions-Policy": (
            "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=()"
        ),
    }


#: What a browser may render as a document (an SVG runs scripts when opened): the whole policy.
DOCUMENT_TYPES = (".html", ".svg")
#: Headers that matter on a script, style sheet, image or manifest (Referrer-Policy: a module's
#: imports and a style sheet's url() follow their response's). A Content-Security-Policy or the
#: framing and opener rules act only on documents and workers: sent with each of the ~40 files
#: of a first load they cost ~20 KB over HTTP/1.1, where headers are not compressed.
SUBRESOURCE_HEADERS = ("X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Resource-Policy")


def file_security_headers(relative: str) -> dict[str, str]:
    """The full policy for documents and the service worker (a worker obeys its own response's CSP)."""
    headers = app_security_headers()
    if relative.endswith(DOCUMENT_TYPES) or relative in ("", SERVICE_WORKER):
        return headers
    return {name: headers[name] for name in SUBRESOURCE_HEADERS}


def is_app_path(path: str) -> bool:
    return path == APP_PREFIX or path.startswith(APP_PREFIX + "/")


class StaticFiles:
    """GET-only files of ``web_dir`` under /app/, and the allow-listed ones of ``node_modules``."""

    def __init__(self, web_dir: Path, node_modules: Path) -> None:
        self.web_dir = web_dir
        self.node_modules = node_modules

    @classmethod
    def from_settings(cls, settings: Settings) -> StaticFiles:
        """``BOCAGE_WEB_DIR``, and the npm libraries installed alongside it (its ``../node_modules``)."""
        web_dir = Path(settings.web_dir)
        return cls(web_dir, web_dir.parent / "node_modules")

    @classmethod
    def from_env(cls) -> StaticFiles:
        return cls.from_settings(Settings.from_env())

    def file(self, path: str) -> Path | None:
        """The file ``/app/...`` names: one of the web directory, or an allow-listed vendor file."""
        if not path.startswith(APP_PREFIX + "/"):
            return None
        rest = path[len(APP_PREFIX) :].lstrip("/")
        if rest == "":
            return self.web_dir / "index.html"
        if rest.startswith("vendor/"):
            target = VENDOR_FILES.get(rest.removeprefix("vendor/"))
            return self.node_modules / target if target else None
        return self._web_file(rest.split("/"))

    def web_files(self) -> dict[str, Path]:
        """Relative path under /app/ -> file of the web directory, for each file served as itself."""
        files = {}
        for source in sorted(self.web_dir.rglob("*")):
            relative = source.relative_to(self.web_dir).as_posix()
            if relative.startswith("vendor/"):
                continue  # /app/vendor/ is the allow-list's, never web/'s
            if source.is_file() and self.file(f"{APP_PREFIX}/{relative}") == source:
                files[relative] = source
        return files

    def vendor_files(self) -> dict[str, Path]:
        """vendor/<name> -> its file in node_modules; FileNotFoundError when one is missing."""
        files = {}
        for name in sorted(VENDOR_FILES):
            source = self.file(f"{APP_PREFIX}/vendor/{name}")
            if source is None or not source.is_file():
                missing = self.node_modules / VENDOR_FILES[name]
                raise FileNotFoundError(f"{missing} is missing: run `npm ci` first")
            files[f"vendor/{name}"] = source
        return files

    def _web_file(self, parts: list[str]) -> Path | None:
        if not all(STATIC_PART.fullmatch(p) for p in parts):
            return None
        candidate = self.web_dir.joinpath(*parts)
        if candidate.suffix not in STATIC_TYPES:
            return None
        try:
            candidate.resolve().relative_to(self.web_dir.resolve())
        except ValueError:  # a symbolic link out of the web directory
            return None
        return candidate

    def answer(self, method: str, path: str, if_none_match: str | None) -> Answer:
        """What to answer to ``method path``, for a path ``is_app_path`` accepts."""
        if method != "GET":
            return Answer(405, [("Allow", "GET")])
        if path == APP_PREFIX:  # the app's relative URLs need the trailing slash
            return Answer(308, [("Location", APP_PREFIX + "/")])
        file = self.file(path)
        data = _read(file) if file is not None else None
        if file is not None and data is not None and path == f"{APP_PREFIX}/{SERVICE_WORKER}":
            data = _stamped_worker(self, data)
        if file is None or data is None:
            return json_answer(404, {"error": "not_found", "message": f"no file {path}"})
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        headers = [
            ("Content-Type", STATIC_TYPES.get(file.suffix, "application/octet-stream")),
            # Revalidate every time (a 304 costs a round trip, not the file): names carry no hash,
            # and the service worker (sw.js) must be checked on each start to bring updates.
            ("Cache-Control", "no-cache"),
            ("ETag", etag),
            *file_security_headers(path.removeprefix(APP_PREFIX + "/")).items(),
        ]
        if etag in (if_none_match or ""):
            return Answer(304, headers)
        return Answer(200, headers, data)


def _stamped_worker(static: StaticFiles, source: bytes) -> bytes | None:
    """sw.js with the shell's list and version; None (a 404) if a vendor file is missing."""
    from bocage.local.app_shell import stamp_worker

    try:
        return stamp_worker(static, source)
    except (FileNotFoundError, ValueError):
        return None


def _read(file: Path) -> bytes | None:
    try:
        return file.read_bytes() if file.is_file() else None
    except OSError:
        return None
