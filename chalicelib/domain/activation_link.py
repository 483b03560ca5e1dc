"""Activation links: the server address and the one-time code in one URL.

The code travels in the URL *fragment*, which browsers never send to a server,
so it cannot land in an access log: ``{app}/#/activate?server=<api>&code=<code>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from chalicelib.domain.invitation import normalise_code
from chalicelib.errors import BadRequest


@dataclass(frozen=True)
class ActivationTarget:
    code: str
    server: str | None


def activation_url(app_url: str, api_url: str, code: str) -> str:
    return f"{app_url.rstrip('/')}/#/activate?" + urlencode({"server": api_url, "code": code})


def parse_activation(code_or_url: str) -> ActivationTarget:
    """Accept a bare code or a full activation URL, as pasted or scanned."""
    text = code_or_url.strip()
    if "://" not in text:
        if not normalise_code(text):
            raise BadRequest("empty activation code")
        return ActivationTarget(code=text, server=None)
    fragment = urlsplit(text).fragment
    query = fragment.split("?", 1)[1] if "?" in fragment else fragment
    params = parse_qs(query)
    codes = params.get("code")
    if not codes:
        raise BadRequest("the activation URL carries no code")
    servers = params.get("server")
    return ActivationTarget(code=codes[0], server=servers[0].rstrip("/") if servers else None)
