"""Bocage's Chalice app: routes wired to services, nothing more.

Every view is a few lines: ``@endpoint`` authenticates and maps errors
(chalicelib.http_api); the work happens in chalicelib.services.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice

from chalicelib.api_schemas import ActivateBody, CreateOrgBody, InviteBody, RoleBody
from chalicelib.domain.organisation import Role
from chalicelib.http_api import ApiContext, endpoint, request_scope
from chalicelib.services.invitations import ActivationRequest
from chalicelib.services.organisations import parse_role

app = Chalice(app_name="bocage")
app.register_middleware(request_scope, "http")

ROLES_TO_INVITE = (Role.MEMBER, Role.ADMIN)


@app.route("/health", methods=["GET"])
@endpoint(auth="none")
def health(ctx: ApiContext) -> dict[str, Any]:
    return {"status": "ok"}


@app.route("/orgs", methods=["POST"])
@endpoint(auth="operator", status=201)
def create_org(ctx: ApiContext) -> dict[str, Any]:
    body = ctx.body(CreateOrgBody)
    org, invitation = ctx.container.invitations.create_organisation(
        body.name, body.plan, body.owner_name, ctx.links, email=body.owner_email
    )
    return {**invitation.public(), "org": org.public()}


@app.route("/activate", methods=["POST"])
@endpoint(auth="none", status=201)
def activate(ctx: ApiContext) -> dict[str, Any]:
    return ctx.container.invitations.activate(ActivationRequest(**ctx.body(ActivateBody).model_dump()))


@app.route("/me", methods=["GET"])
@endpoint()
def whoami(ctx: ApiContext) -> dict[str, Any]:
    return ctx.container.orgs.whoami(ctx.principal)


@app.route("/invitations", methods=["POST"])
@endpoint(status=201)
def invite(ctx: ApiContext) -> dict[str, Any]:
    body = ctx.body(InviteBody)
    role = parse_role(body.role, allowed=ROLES_TO_INVITE)
    return ctx.container.invitations.invite(
        ctx.principal, body.display_name, role, ctx.links, email=body.email
    ).public()


@app.route("/devices/link", methods=["POST"])
@endpoint(status=201)
def link_device(ctx: ApiContext) -> dict[str, Any]:
    return ctx.container.invitations.link_device(ctx.principal, ctx.links).public()


@app.route("/members", methods=["GET"])
@endpoint()
def list_members(ctx: ApiContext) -> dict[str, Any]:
    page = ctx.container.orgs.list_members(
        ctx.principal, cursor=ctx.query.get("cursor"), limit=ctx.query_int("limit", 100)
    )
    return page.public()


@app.route("/members/{member_id}", methods=["DELETE"])
@endpoint()
def remove_member(ctx: ApiContext, member_id: str) -> dict[str, Any]:
    return ctx.container.orgs.remove_member(ctx.principal, member_id).public()


@app.route("/members/{member_id}/role", methods=["PUT"])
@endpoint()
def set_role(ctx: ApiContext, member_id: str) -> dict[str, Any]:
    role = parse_role(ctx.body(RoleBody).role)
    return ctx.container.orgs.set_role(ctx.principal, member_id, role).public()


@app.route("/devices/{device_id}/revoke", methods=["POST"])
@endpoint()
def revoke_device(ctx: ApiContext, device_id: str) -> dict[str, Any]:
    return ctx.container.orgs.revoke_device(ctx.principal, device_id).public()
