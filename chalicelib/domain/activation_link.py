"""Activation links: the server address, the one-time code and (protocol v2) the ticket in one URL.

Everything travels in the URL *fragment*, which browsers never send to a server, so it cannot
land in an access log: ``{app}/#/activate?server=<api>&code=<code>&org=&member=``, to which the
inviting client appends ``ticket``, ``root`` (and ``ik`` for a device link): docs/protocol.md, 13.4.
An invitation's link also names the member as the admin chose (``name``), which stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from chalicelib.domain.invitation import normalise_code
from chalicelib.errors import BadRequest

#: The fragment's parameters besides ``server`` and ``code`` (docs/protocol.md, 13.4).
TRUST_PARAMS = ("org", "member", "ticket", "root", "ik")


@dataclass(frozen=True)
class ActivationTarget:
    code: str
    server: str | None
    org: str | None = None
    member: str | None = None
    ticket: str | None = None  # the ticket key's private seed: never sent to the server
    root: str | None = None
    ik: str | None = None
    name: str | None = None  # the display name the admin chose: it stands (13.5)


def activation_url(app_url: str, api_url: str, code: str, **params: str | None) -> str:
    fields = {"server": api_url, "code": code, **{k: v for k, v in params.items() if v}}
    return f"{app_url.rstrip('/')}/#/activate?" + urlencode(fields)


def with_fragment_params(url: str, **params: str | None) -> str:
    """The server's activation URL with the client's secret parameters appended to its fragment."""
    extra = urlencode({k: v for k, v in params.items() if v})
    return f"{url}&{extra}" if extra else url


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
    extra = {name: params[name][0] for name in TRUST_PARAMS if params.get(name)}
    named = params.get("name")
    return ActivationTarget(
        code=codes[0],
        server=servers[0].rstrip("/") if servers else None,
        name=named[0].strip() if named else None,
        **extra,
    )
