"""Invitations and activation: how a person joins without a phone number.

An admin invites; the server keeps only the code's hash and the admin device's signed ticket;
the person's device generates its keys and activates with the code, which is consumed exactly
once by a single-item conditional write (no transaction needed), presenting certificates signed
with the ticket's private key, which only the URL fragment carried (docs/protocol.md, 13.3-13.5).
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import Any, Literal

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from chalicelib.adapters.records.invitations import InvitationRecords
from chalicelib.domain.activation_link import activation_url
from chalicelib.domain.certificates import check_box_key, check_device_cert, check_member_cert, check_ticket
from chalicelib.domain.encoding import b64d
from chalicelib.domain.events import InvitationActivated, InvitationIssued
from chalicelib.domain.ids import device_id_for
from chalicelib.domain.invitation import (
    Invitation,
    InvitationStatus,
    activation_proof_message,
    code_hash,
    new_code,
)
from chalicelib.domain.organisation import (
    Device,
    Member,
    MemberStatus,
    Organisation,
    Plan,
    Role,
    require_may_grant,
)
from chalicelib.domain.principal import Principal
from chalicelib.domain.statements import fingerprint
from chalicelib.errors import BadRequest, ConditionFailed, Conflict, Forbidden, Gone, NotFound
from chalicelib.ports import Attachment, Clock, Mailer, MailMessage, Store
from chalicelib.services.event_bus import EventBus
from chalicelib.services.organisations import OrganisationService

OPERATOR = "operator"


@dataclass(frozen=True)
class Links:
    """Where clients reach the API, and where the web app opens activation links."""

    api_url: str
    app_url: str


@dataclass(frozen=True)
class IssuedInvitation:
    org_id: str
    member_id: str
    role: Role
    activation_code: str
    activation_url: str
    valid_until: int
    emailed: bool = False
    mail_error: str | None = None

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "org_id": self.org_id,
            "member_id": self.member_id,
            "role": self.role.value,
            "activation_code": self.activation_code,
            "activation_url": self.activation_url,
            "valid_until": self.valid_until,
            "emailed": self.emailed,
        }
        if self.mail_error:
            body["mail_error"] = self.mail_error
        return body


@dataclass(frozen=True)
class ActivationRequest:
    code: str
    sign_public_key: str
    box_public_key: str
    proof: str
    device_name: str = ""
    display_name: str | None = None
    member_cert: dict[str, Any] | None = None
    device_cert: dict[str, Any] | None = None


@dataclass(frozen=True)
class CheckedCertificates:
    """The statements an activation stores: a member certificate (None for a linked device)."""

    member_cert: dict[str, Any] | None
    device_cert: dict[str, Any]


class InvitationService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        orgs: OrganisationService,
        mailer: Mailer,
        events: EventBus,
        *,
        ttl_days: int = 7,
    ) -> None:
        self._invitations = InvitationRecords(store)
        self._events = events
        self._clock = clock
        self._orgs = orgs
        self._mailer = mailer
        self._ttl = ttl_days * 86400

    def create_organisation(
        self, name: str, plan: Plan, owner_name: str, links: Links, *, email: str | None = None
    ) -> tuple[Organisation, IssuedInvitation]:
        """Bootstrap: the organisation and its first owner's invitation."""
        org = self._orgs.create(name, plan)
        member = self._orgs.add_invited_member(org.org_id, owner_name, Role.OWNER)
        return org, self._issue(org, member, None, links, email)

    def invite(
        self,
        who: Principal,
        display_name: str,
        role: Role,
        links: Links,
        *,
        email: str | None = None,
        ticket: dict[str, Any] | None = None,
    ) -> IssuedInvitation:
        """A QR or link invitation carries the admin device's ticket; an e-mailed one cannot (13.7)."""
        require_may_grant(who.role, role)
        if email and ticket is not None:
            raise BadRequest(
                "an e-mailed invitation carries no ticket: its secret would pass through the server"
            )
        checked = None
        if not email:
            checked = check_ticket(
                ticket,
                self._calling_device(who),
                self._clock.now(),
                role=role.value,
                display_name=display_name,
            )
        member = self._orgs.add_invited_member(who.org_id, display_name, role)
        return self._issue(self._orgs.get(who.org_id), member, who, links, email, checked)

    def link_device(self, who: Principal, links: Links, ticket: dict[str, Any] | None) -> IssuedInvitation:
        """A code for one more device of the caller (a phone beside a laptop), with its link ticket."""
        checked = check_ticket(ticket, self._calling_device(who), self._clock.now())
        member = self._orgs.member(who.org_id, who.member_id)
        return self._issue(self._orgs.get(who.org_id), member, who, links, None, checked)

    def _calling_device(self, who: Principal) -> Device:
        device = self._orgs.get_device(who.device_id)
        if device is None:
            raise NotFound("the calling device is unknown")
        return device

    def _issue(
        self,
        org: Organisation,
        member: Member,
        issuer: Principal | None,
        links: Links,
        email: str | None,
        ticket: dict[str, Any] | None = None,
    ) -> IssuedInvitation:
        """``issuer`` None is the operator (bootstrap); otherwise the device that asked."""
        code = new_code()
        now = self._clock.now()
        valid_until = now + self._ttl if ticket is None else min(now + self._ttl, int(ticket["expires_at"]))
        invitation = Invitation(
            code_hash=code_hash(code),
            org_id=org.org_id,
            member_id=member.member_id,
            display_name=member.display_name,
            role=member.role,
            invited_by=issuer.member_id if issuer else OPERATOR,
            invited_by_device=issuer.device_id if issuer else None,
            created_at=now,
            valid_until=valid_until,
            ticket=ticket,
            emailed=bool(email) and issuer is not None,
        )
        self._invitations.add(invitation)
        grant: Literal["member", "device"] = "device" if ticket and ticket["grant"] == "device" else "member"
        self._events.publish(InvitationIssued(member, issuer, grant, bool(email), now))
        root = org.root if invitation.emailed else None
        # The name an admin chose travels with the link and stands (13.5); a device link needs
        # none, and the first owner, invited by the operator, names themselves.
        named = issuer is not None and (ticket is None or ticket["grant"] == "member")
        url = activation_url(
            links.app_url,
            links.api_url,
            code,
            org=org.org_id,
            member=member.member_id,
            root=root,
            name=member.display_name if named else None,
        )
        issued = IssuedInvitation(
            org_id=org.org_id,
            member_id=member.member_id,
            role=member.role,
            activation_code=code,
            activation_url=url,
            valid_until=invitation.valid_until,
        )
        if not email:
            return issued
        try:
            self._mailer.send(_invitation_mail(email, org, member, code, url, invitation.valid_until))
        except Exception as exc:  # delivery failed: the admin still holds the code and the URL
            return IssuedInvitation(
                **{**issued.__dict__, "mail_error": f"e-mail not sent: {type(exc).__name__}"}
            )
        return IssuedInvitation(**{**issued.__dict__, "emailed": True})

    # -- activation ----------------------------------------------------------------

    def activate(self, request: ActivationRequest) -> dict[str, Any]:
        sign_key = public_key_bytes(request.sign_public_key, "sign_public_key")
        public_key_bytes(request.box_public_key, "box_public_key")
        check_box_key(request.box_public_key)
        try:
            VerifyKey(sign_key).verify(
                activation_proof_message(request.code, request.box_public_key), b64d(request.proof)
            )
        except (BadSignatureError, ValueError) as exc:
            raise BadRequest("proof does not verify with sign_public_key") from exc

        invitation = self._invitations.get(code_hash(request.code))
        if invitation is None:
            raise NotFound("unknown activation code")
        device_id = device_id_for(sign_key)
        now = self._clock.now()
        certs = self._check_certificates(invitation, request)
        if invitation.status is InvitationStatus.PENDING:
            if not invitation.is_valid_at(now):
                raise Gone("this activation code has expired; ask an admin for a new invitation")
            member = self._orgs.member(invitation.org_id, invitation.member_id)
            if member.status is MemberStatus.REMOVED:
                raise Gone("this invitation was withdrawn")
            self._require_issuer_still_entitled(invitation)
            existing = self._orgs.get_device(device_id)
            if existing is not None and (existing.member_id != member.member_id or existing.is_revoked):
                raise Conflict("these device keys are already registered; create a new profile")
            self._consume(invitation, device_id, now)
        elif invitation.used_by_device != device_id:
            raise Conflict("this activation code has already been used")
        return self._finish(invitation, request, certs, device_id, now)

    def _check_certificates(self, invitation: Invitation, request: ActivationRequest) -> CheckedCertificates:
        """The certificates an activation must present for its kind of invitation (13.5)."""
        keys = {"sign_public_key": request.sign_public_key, "box_public_key": request.box_public_key}
        ticket = invitation.ticket
        if ticket is not None and ticket["grant"] == "device":
            if request.member_cert is not None:
                raise BadRequest("member_cert: a device link presents only a device certificate")
            member = self._orgs.member(invitation.org_id, invitation.member_id)
            if member.identity_key is None:
                raise Gone("this member has no identity key: link from a device activated with protocol v2")
            device_cert = check_device_cert(
                request.device_cert,
                org_id=invitation.org_id,
                member_id=invitation.member_id,
                identity_key=member.identity_key,
                ticket=ticket,
                **keys,
            )
            return CheckedCertificates(None, device_cert)
        member_cert = check_member_cert(
            invitation, request.member_cert, first_owner=invitation.invited_by == OPERATOR
        )
        name = (request.display_name or "").strip()
        if name and name != member_cert["display_name"]:
            raise BadRequest("display_name must be the member certificate's")
        if invitation.invited_by != OPERATOR and member_cert["display_name"] != invitation.display_name:
            raise BadRequest(
                f"member_cert: the admin named this member {invitation.display_name!r} and that name stands;"
                " activate with it (an admin may invite you again under another name)"
            )
        device_cert = check_device_cert(
            request.device_cert,
            org_id=invitation.org_id,
            member_id=invitation.member_id,
            identity_key=str(member_cert["identity_key"]),
            ticket=None,
            **keys,
        )
        return CheckedCertificates(member_cert, device_cert)

    def _require_issuer_still_entitled(self, invitation: Invitation) -> None:
        """An invitation is only as good as its issuer: a revoked device or a removed or
        demoted admin has withdrawn what they issued (a stolen phone's link codes die with it)."""
        if invitation.invited_by == OPERATOR:
            return
        withdrawn = Gone("this invitation was withdrawn: whoever issued it may no longer do so")
        if invitation.invited_by_device is not None:
            device = self._orgs.get_device(invitation.invited_by_device)
            if device is None or device.is_revoked:
                raise withdrawn
        try:
            issuer = self._orgs.member(invitation.org_id, invitation.invited_by)
        except NotFound as exc:
            raise withdrawn from exc
        if not issuer.is_active:
            raise withdrawn
        if issuer.member_id != invitation.member_id:
            try:
                require_may_grant(issuer.role, invitation.role)
            except Forbidden as exc:
                raise withdrawn from exc

    def _consume(self, invitation: Invitation, device_id: str, now: int) -> None:
        used = invitation.model_copy(
            update={"status": InvitationStatus.USED, "used_by_device": device_id, "used_at": now}
        )
        try:
            self._invitations.save_if_pending(used)
        except ConditionFailed as exc:
            latest = self._invitations.get(invitation.code_hash)
            if latest is None or latest.used_by_device != device_id:
                raise Conflict("this activation code has already been used") from exc

    def _finish(
        self,
        invitation: Invitation,
        request: ActivationRequest,
        certs: CheckedCertificates,
        device_id: str,
        now: int,
    ) -> dict[str, Any]:
        """Idempotent steps after the code is consumed: a retry by the same device converges."""
        member = self._orgs.member(invitation.org_id, invitation.member_id)
        if member.status is MemberStatus.INVITED and certs.member_cert is not None:
            activated = member.model_copy(
                update={
                    "status": MemberStatus.ACTIVE,
                    "activated_at": now,
                    "display_name": certs.member_cert["display_name"],
                    "member_cert": certs.member_cert,
                    "ticket": invitation.ticket,
                }
            )
            try:
                self._orgs.save_member(activated, expected=member)
            except Conflict as exc:  # removed while activating: the removal wins
                raise Gone("this invitation was withdrawn") from exc
            member = activated
        if member.status is MemberStatus.REMOVED:
            raise Gone("this invitation was withdrawn")
        device = self._orgs.get_device(device_id)
        if device is not None:
            self._orgs.write_device(device)  # converge: a crash may have left one copy unwritten
        else:
            device = Device(
                device_id=device_id,
                org_id=invitation.org_id,
                member_id=invitation.member_id,
                name=request.device_name.strip()[:120] or "device",
                sign_public_key=request.sign_public_key,
                box_public_key=request.box_public_key,
                created_at=now,
                device_cert=certs.device_cert,
                ticket=invitation.ticket if certs.member_cert is None else None,
            )
            self._orgs.add_device(device)
        # Again on a retry: the entry is rewritten in place, and is there even after a crash.
        self._events.publish(InvitationActivated(member, device, linked=certs.member_cert is None))
        org = self._orgs.get(invitation.org_id)
        if certs.member_cert is not None and certs.member_cert["root"] and org.root is None:
            org = self._orgs.set_root(org.org_id, fingerprint(str(certs.member_cert["identity_key"])))
        return {
            "org_id": org.org_id,
            "org_name": org.name,
            "member_id": member.member_id,
            "device_id": device_id,
            "role": member.role.value,
            "display_name": member.display_name,
            "root": org.root,
        }


def public_key_bytes(value: str, name: str) -> bytes:
    """A request's b64url public key as its 32 bytes (400 otherwise)."""
    try:
        raw = b64d(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be base64url") from exc
    if len(raw) != 32:
        raise BadRequest(f"{name} must be a 32-byte public key")
    return raw


def _invitation_mail(
    to: str, org: Organisation, member: Member, code: str, url: str, valid_until: int
) -> MailMessage:
    """Bilingual (French first) invitation with the link and the QR code inline."""
    from chalicelib.activation_qr import qr_png  # segno only when a mail is actually sent

    until = dt.datetime.fromtimestamp(valid_until, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"Bonjour {member.display_name},\n\n"
        f"{org.name} vous invite sur Bocage, sa messagerie chiffrée de bout en bout.\n"
        f"Ouvrez ce lien sur votre appareil pour l'activer (valable jusqu'au {until}) :\n{url}\n\n"
        f"Ou saisissez ce code : {code}\n\n"
        f"---\n{org.name} invites you to Bocage. Open the link above on your device "
        f"(valid until {until}) or enter the code.\n"
    )
    safe = {k: html.escape(v) for k, v in {"name": member.display_name, "org": org.name, "url": url}.items()}
    body_html = (
        f"<p>Bonjour {safe['name']},</p>"
        f"<p>{safe['org']} vous invite sur Bocage, sa messagerie chiffrée de bout en bout.</p>"
        f'<p><a href="{safe["url"]}">Activer mon appareil</a> (valable jusqu\'au {until})</p>'
        '<p>Ou scannez ce code QR :</p><p><img src="cid:activation-qr" alt="QR code d\'activation"></p>'
        f"<p>Code : <code>{html.escape(code)}</code></p>"
        f'<hr><p lang="en">{safe["org"]} invites you to Bocage. Open the link or scan the code.</p>'
    )
    return MailMessage(
        to=to,
        subject=f"{org.name} vous invite sur Bocage / invites you to Bocage",
        text=text,
        html=body_html,
        attachments=(Attachment("activation.png", "image/png", qr_png(url), inline_id="activation-qr"),),
    )
