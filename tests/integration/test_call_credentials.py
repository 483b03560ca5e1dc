"""GET /channels/{c}/calls/ice (docs/calls.md), on both stores: a member of a group or a direct
conversation in a pro organisation (or a running pilot) gets STUN URLs and a TURN credential
that expires; the free plan, an ended pilot that suspended, a tribe, an admin who is not in the
channel and another organisation are refused, each with its reason."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bocage.client.api import ApiError
from chalicelib import wiring
from chalicelib.domain.organisation import Plan
from chalicelib.services.calls import CallService
from tests.support import People, SignedApi, messenger_for

SECRET = "a-secret-the-turn-server-shares"
TTL = 600


@pytest.fixture
def calls(container: Any) -> None:
    settings = dataclasses.replace(
        container.settings,
        stun_urls=("stun:turn.mairie.test:3478",),
        turn_urls=("turn:turn.mairie.test:3478?transport=udp", "turns:turn.mairie.test:5349"),
        turn_secret=SECRET,
        turn_ttl=TTL,
    )
    container.calls = CallService(settings, container.clock, container.orgs, container.channels)


def ice(reader: Any, cid: str) -> dict[str, Any]:
    answer: dict[str, Any] = reader.client.call_ice(cid)
    return answer


def refusal(reader: Any, cid: str) -> tuple[int, str]:
    with pytest.raises(ApiError) as refused:
        ice(reader, cid)
    return refused.value.status, refused.value.code


def test_a_member_of_a_pro_organisation_gets_a_turn_credential(
    calls: None, people: People, container: Any, api: SignedApi
) -> None:
    alice = people.join("alice")
    alice_id = people.info["alice"]["member_id"]
    container.orgs.set_plan(people.info["owner"]["org_id"], Plan.PRO)
    cid = alice.open_direct(people.info["owner"]["member_id"])["channel_id"]
    answer = ice(alice, cid)
    stun, turn = answer["ice_servers"]
    assert stun == {"urls": ["stun:turn.mairie.test:3478"]}
    assert turn["urls"] == ["turn:turn.mairie.test:3478?transport=udp", "turns:turn.mairie.test:5349"]
    assert answer["relay"] is True
    assert answer["expires_at"] == api.clock.now() + TTL
    assert turn["username"] == f"{answer['expires_at']}:{alice_id}"  # a member, never a device or channel
    expected = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(turn["credential"]) == expected
    api.clock.advance(60)
    assert ice(alice, cid)["expires_at"] == api.clock.now() + TTL  # a fresh one each time


def test_plans_channels_and_people_who_may_not_call(
    calls: None, people: People, container: Any, api: SignedApi, operator: Any
) -> None:
    alice, bob = people.join("alice"), people.join("bob")
    org_id = people.info["owner"]["org_id"]
    group = alice.create_channel("group", "Chantier")["channel_id"]
    tribe = people.owner.create_channel("tribe", "Infos")["channel_id"]
    people.owner.add_member(tribe, people.info["alice"]["member_id"])
    assert refusal(alice, group) == (403, "calls_not_in_plan")  # a new organisation is on the free plan

    container.orgs.set_plan(org_id, Plan.PILOT)
    assert ice(alice, group)["relay"] is True  # a running pilot tries the pro offer
    assert refusal(alice, tribe) == (403, "not_a_call_channel")
    assert refusal(bob, group) == (403, "forbidden")  # not in the channel
    assert refusal(people.owner, group) == (403, "forbidden")  # the owner, but not in it

    people.owner.client.choose_pilot_end("suspend")
    api.clock.advance(400 * 86400)  # past the pilot's year, which chose to suspend
    assert refusal(alice, group) == (403, "calls_not_in_plan")

    other = api.create_org(operator, name="Autre")
    stranger_keys, info = api.activate(other["activation_code"], "Stranger")
    stranger = messenger_for(api, stranger_keys, people.tmp / "stranger", info.body)
    container.orgs.set_plan(info.body["org_id"], Plan.PRO)
    assert refusal(stranger, group)[0] == 404


def test_without_a_turn_server_only_stun_and_no_relay(people: People, container: Any) -> None:
    container.orgs.set_plan(people.info["owner"]["org_id"], Plan.PRO)
    alice = people.join("alice")
    cid = alice.create_channel("group", "Chantier")["channel_id"]
    answer = ice(alice, cid)
    assert (answer["ice_servers"], answer["relay"]) == ([], False)


def test_on_aws_the_turn_secret_is_read_from_its_ssm_parameter_when_first_asked(
    people: People, container: Any, aws_env: None
) -> None:
    settings = dataclasses.replace(
        container.settings,
        turn_urls=("turn:turn.mairie.test:3478",),
        turn_secret=None,
        turn_secret_parameter="/bocage/dev/turn-secret",
        region="eu-west-3",
    )
    with mock_aws():
        # Built before the parameter exists: nothing is read at start.
        container.calls = CallService(
            settings, container.clock, container.orgs, container.channels, wiring.build_turn_secret(settings)
        )
        boto3.client("ssm", region_name="eu-west-3").put_parameter(
            Name="/bocage/dev/turn-secret", Type="SecureString", Value=SECRET
        )
        container.orgs.set_plan(people.info["owner"]["org_id"], Plan.PRO)
        alice = people.join("alice")
        cid = alice.open_direct(people.info["owner"]["member_id"])["channel_id"]
        turn = ice(alice, cid)["ice_servers"][0]
    expected = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(turn["credential"]) == expected
