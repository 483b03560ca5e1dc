"""Plans, invoices, reports and impact through the API: who may see and run what."""

from __future__ import annotations

from typing import Any

import pytest

from bocage.client.api import ApiError
from bocage.client.profile import OperatorKey
from chalicelib.domain.billing import month_of, previous_month
from chalicelib.domain.organisation import Plan
from tests.support import People, SignedApi

DAY = 86400


def _bill_last_month(api: SignedApi, operator: OperatorKey) -> dict[str, Any]:
    reply = api.call("POST", "/billing/run", {}, signer=operator)
    assert reply.status == 200, reply.body
    return dict(reply.body)


def test_a_pro_month_is_billed_and_shown_to_admins_only(
    people: People, api: SignedApi, operator: OperatorKey, container: Any
) -> None:
    org_id = people.info["owner"]["org_id"]
    container.orgs.set_plan(org_id, Plan.PRO)
    agent = people.join("agent")
    plan = people.owner.client.request("GET", "/plan")
    assert plan["plan"] == "pro"
    assert plan["month_to_date"]["billable_users"] == 2 and plan["month_to_date"]["subtotal_cents"] > 0
    with pytest.raises(ApiError) as refused:
        agent.client.request("GET", "/plan")
    assert refused.value.status == 403

    api.clock.advance(40 * DAY)
    run = _bill_last_month(api, operator)
    month = run["month"]
    assert month == previous_month(month_of(api.clock.now()))
    invoices = people.owner.client.request("GET", "/invoices")["invoices"]
    assert [i["month"] for i in invoices] == [month]
    invoice = people.owner.client.request("GET", f"/invoices/{month}")
    assert invoice["total_cents"] == invoice["subtotal_cents"] + invoice["vat_cents"]
    assert invoice["reference"]
    for path in ("/invoices", f"/invoices/{month}", "/report", "/impact/org"):
        with pytest.raises(ApiError) as hidden:
            agent.client.request("GET", path)
        assert hidden.value.status == 403, path
    with pytest.raises(ApiError) as missing:
        people.owner.client.request("GET", "/invoices/2001-01")
    assert missing.value.status == 404
    with pytest.raises(ApiError) as malformed:
        people.owner.client.request("GET", "/invoices/last-month")
    assert malformed.value.status == 400
    again = _bill_last_month(api, operator)
    assert again["issued"] == 0  # a rerun is a no-op


def test_only_the_operator_runs_billing(people: People, api: SignedApi) -> None:
    reply = api.call("POST", "/billing/run", {"dry_run": True}, signer=people.keys["owner"])
    assert reply.status == 401
    assert api.call("POST", "/billing/run", {"dry_run": True}).status == 401


def test_dry_run_shows_the_month_to_date_and_records_nothing(
    people: People, api: SignedApi, operator: OperatorKey, container: Any
) -> None:
    org_id = people.info["owner"]["org_id"]
    container.orgs.set_plan(org_id, Plan.PRO)
    reply = api.call("POST", "/billing/run", {"dry_run": True}, signer=operator)
    assert reply.status == 200 and reply.body["dry_run"] is True and reply.body["month_to_date"] is True
    assert len(reply.body["invoices"]) == 1
    assert people.owner.client.request("GET", "/invoices")["invoices"] == []


def test_impact_is_public_and_counts_messages(people: People, api: SignedApi) -> None:
    cid = people.owner.create_channel("tribe", "Infos")["channel_id"]
    for name in ("a", "b", "c"):
        people.join(name)
        people.owner.add_member(cid, people.info[name]["member_id"])
    people.owner.send_text(cid, "Bonjour à tous")
    public = api.call("GET", "/impact")
    assert public.status == 200 and "trees_planted" in public.body
    mine = people.owner.client.request("GET", "/impact/org")
    month = month_of(api.clock.now())
    this_month = next(m for m in mine["months"] if m["month"] == month)
    assert (this_month["messages"], this_month["notifications"]) == (1, 3)


def test_pilot_report_in_json_and_csv(people: People) -> None:
    report = people.owner.client.request("GET", "/report")
    assert report["org_id"] == people.info["owner"]["org_id"]
    csv = people.owner.client.request("GET", "/report", query={"format": "csv"})["csv"]
    assert csv.splitlines()[0].startswith("month,")


def test_a_pilot_that_chose_to_suspend_stops_sending_at_its_end(
    people: People, api: SignedApi, container: Any
) -> None:
    container.orgs.set_plan(people.info["owner"]["org_id"], Plan.PILOT)
    status = people.owner.client.request("GET", "/plan")
    assert status["plan"] == "pilot" and status["pilot_end_choice"] == "convert"
    cid = people.owner.create_channel("group", "G")["channel_id"]
    chosen = people.owner.client.request("PUT", "/plan/pilot-end", {"choice": "suspend"})
    assert chosen["pilot_end_choice"] == "suspend"
    agent = people.join("agent")
    with pytest.raises(ApiError) as refused:
        agent.client.request("PUT", "/plan/pilot-end", {"choice": "convert"})
    assert refused.value.status == 403
    people.owner.send_text(cid, "before the end")
    api.clock.advance(366 * DAY)
    with pytest.raises(ApiError) as suspended:
        people.owner.send_text(cid, "after the end")
    assert suspended.value.status == 403 and suspended.value.code == "sending_suspended"
    assert [m["text"] for m in people.owner.read(cid)["messages"]] == []  # retention 90 d: gone anyway
