"""Fuzzing the REST API with schemathesis, behind authentication (issue 19).

A real `bocage serve` holds one organisation: an owner and a member, each with an activated
device (the SDK, as a person would), a tribe and a group, a message. Schemathesis generates
requests for every operation of the server's own /openapi.json; each is signed with a real
device key (or the operator key for operator routes, or not at all for open ones) just before
it leaves, so generated input reaches the services rather than stopping at 401. Path
parameters are drawn half from the real ids, half generated. Every answer is checked: no 5xx,
a status the spec lists, a body that matches the spec's schema. Then the organisation must
still work (``check_invariants``). Used by tests/e2e/test_fuzz.py (short) and bench/fuzz.py.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seed_fn
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from nacl.signing import SigningKey
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.core.result import Err
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bocage.client.api import BocageClient
from bocage.client.messenger import Messenger
from bocage.client.profile import DeviceKeys, OperatorKey, Profile, sign_token
from bocage.client.trust import activate
from chalicelib.domain.activation_link import parse_activation
from chalicelib.domain.auth_token import SCHEME

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
Signer = tuple[SigningKey, str] | None


@dataclass
class World:
    """The organisation the fuzzer works on, and the SDK objects that built it."""

    url: str
    owner: Messenger
    member: Messenger
    operator: OperatorKey
    ids: dict[str, list[str]]

    @property
    def signers(self) -> dict[str, Signer]:
        return {
            "owner": (self.owner.keys.signing, self.owner.device_id),
            "member": (self.member.keys.signing, self.member.device_id),
            "operator": (self.operator.signing, self.operator.key_id),
            "none": None,
        }


def activate_device(url: str, activation_url: str, profile_dir: Path, name: str) -> Messenger:
    """What `bocage activate` does, in process: new keys, the certificates, the profile."""
    profile = Profile(profile_dir)
    keys = DeviceKeys.generate()
    profile.save_keys(keys)
    target = parse_activation(activation_url)
    result = activate(
        BocageClient(url), profile, target, keys, device_name=name, display_name=name, now=int(time.time())
    )
    result.pop("warnings", None)
    profile.save_info({"server": url, **result})
    return Messenger(profile)


def build_world(url: str, owner_activation_url: str, operator: OperatorKey, workdir: Path) -> World:
    owner = activate_device(url, owner_activation_url, workdir / "owner", "Maire")
    invitation = owner.trust.invite("Alice", role="member", email=None)
    member = activate_device(url, invitation["activation_url"], workdir / "member", "Alice")
    tribe = owner.create_channel("tribe", "Infos")["channel_id"]
    group = owner.create_channel("group", "Conseil")["channel_id"]
    for channel in (tribe, group):
        owner.add_member(channel, member.info["member_id"])
    owner.send_text(tribe, "before the fuzzer")
    ids = {
        "channel_id": [tribe, group],
        "member_id": [owner.info["member_id"], member.info["member_id"], invitation["member_id"]],
        "device_id": [owner.device_id, member.device_id],
        "month": [time.strftime("%Y-%m", time.gmtime())],
    }
    return World(url, owner, member, operator, ids)


class SigningAuth(requests.auth.AuthBase):
    """Signs the request exactly as it will be sent: method, path, query and body bytes."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.signer is None:
            return request
        parts = urlsplit(request.url or "")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = request.body or b""
        data = body.encode("utf-8") if isinstance(body, str) else body
        assert isinstance(data, bytes), "schemathesis sends whole bodies, never streams"
        key, subject = self.signer
        token = sign_token(
            key, subject, request.method or "GET", parts.path, query, data, now=int(time.time())
        )
        request.headers["Authorization"] = f"{SCHEME} {token}"
        return request


@dataclass
class Report:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "routes_covered": len(self.routes),
            "server_errors": len(self.server_errors),
            "schema_violations": len(self.violations),
            "statuses": dict(sorted(self.statuses.items())),
            "seconds": round(self.seconds, 1),
        }


def _signers_for(operation: Any) -> list[str]:
    schemes = {name for requirement in operation.definition.raw.get("security", []) for name in requirement}
    if "operatorToken" in schemes:
        return ["operator", "operator", "operator", "none"]
    if "deviceToken" in schemes:
        return ["owner", "owner", "member", "member", "none"]
    return ["none"]


def _path_parameters(operation: Any, world: World) -> st.SearchStrategy[dict[str, Any] | None]:
    """The real ids half of the time (to get past 404), else whatever schemathesis generates."""
    names = [p.name for p in operation.path_parameters]
    if not names:
        return st.just(None)
    real = st.fixed_dictionaries({n: st.sampled_from(world.ids.get(n, ["x"])) for n in names})
    return st.one_of(st.none(), real)


def fuzz(world: World, examples: int, *, negative: int = 0, seed: int | None = None) -> Report:
    """``examples`` generated requests per operation of the server's spec, and ``negative`` more
    that break it on purpose (a wrong type, a missing field: a 4xx expected), all checked.

    ``seed`` None: the same cases every run (derandomized, for ``make test``); else that seed.
    """
    schema = schemathesis.openapi.from_url(f"{world.url}/openapi.json")
    report = Report()
    session = requests.Session()
    started = time.monotonic()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the spec itself is wrong: nothing to fuzz
        operation = result.ok()
        _fuzz_operation(operation, world, report, session, examples, seed, GenerationMode.POSITIVE)
        if negative:
            _fuzz_operation(operation, world, report, session, negative, seed, GenerationMode.NEGATIVE)
    report.seconds = time.monotonic() - started
    return report


def _fuzz_operation(
    operation: Any,
    world: World,
    report: Report,
    session: requests.Session,
    examples: int,
    seed: int | None,
    mode: GenerationMode,
) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    signers = world.signers

    def case_for(pp: dict[str, Any] | None) -> st.SearchStrategy[Any]:
        strategy: st.SearchStrategy[Any] = (
            operation.as_strategy(mode, path_parameters=pp) if pp else operation.as_strategy(mode)
        )
        return strategy

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=_path_parameters(operation, world).flatmap(case_for),
        signer=st.sampled_from(_signers_for(operation)),
    )
    def one(case: Any, signer: str) -> None:
        response = case.call(base_url=world.url, session=session, auth=SigningAuth(signers[signer]))
        report.requests += 1
        report.routes[label] += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Failure as failure:
            _record(report, label, response, failure, case)
        except BaseExceptionGroup as group:
            for each in group.exceptions:
                _record(report, label, response, each, case)

    if seed is not None:
        one = seed_fn(seed)(one)
    try:
        one()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # Nothing to break: an operation without parameters nor body (GET /health) has no invalid input.


def _record(
    report: Report, label: str, response: requests.Response, failure: BaseException, case: Any
) -> None:
    sent = {"path": case.path_parameters, "query": case.query, "body": case.body}
    line = (
        f"{label} -> {response.status_code}: {type(failure).__name__}: {str(failure)[:300]}"
        f" | sent {str(sent)[:300]} | got {response.text[:200]}"
    )
    if response.status_code >= 500:
        report.server_errors.append(line)
    else:
        report.violations.append(line)


def check_invariants(world: World) -> list[str]:
    """What must still hold after the fuzzer: the organisation works, as its people see it."""
    problems: list[str] = []
    members = world.owner.client.members()
    owners = [m for m in members if m["role"] == "owner" and m["status"] == "active"]
    if not owners:
        problems.append("no active owner left")
    channels = {c["channel_id"] for c in world.owner.channels()}
    if not set(world.ids["channel_id"]) <= channels:
        problems.append(f"the owner lost a channel: {channels}")
    tribe = world.ids["channel_id"][0]
    sent = world.owner.send_text(tribe, "after the fuzzer")
    mine = world.owner.read(tribe)["messages"]
    if not any(m.get("text") == "after the fuzzer" for m in mine):
        problems.append("the owner cannot read back their message")
    theirs = world.member.client.messages(tribe)["messages"]
    if sent["message_id"] not in {m["message_id"] for m in theirs}:
        problems.append("the member does not get the owner's message")
    with urllib.request.urlopen(f"{world.url}/health", timeout=10) as answer:
        if answer.status != 200:
            problems.append(f"/health answers {answer.status}")
    return problems
