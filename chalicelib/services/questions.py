"""Questions to the town hall (docs/protocol.md, section 20).

A follower of a public tribe asks a private question: their device seals it, one box per
device of the tribe's managers (the organisation's admins, the tribe's authors) and one for
itself. The managers list the tribe's questions (each sees its own box) and answer: a box
sealed to the asker's device, and, if the answer was also published in the tribe, the id of
that message. The server checks who may ask, list and answer, that every box goes to a
manager's device or the asker's own, and a rate per follower device; it never sees a text.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.adapters.records.members import MemberRecords
from chalicelib.adapters.records.questions import QuestionRecords
from chalicelib.domain.channel import Channel, ChannelKind, ChannelRole, require_may_manage
from chalicelib.domain.organisation import Role
from chalicelib.domain.principal import Principal
from chalicelib.domain.questions import (
    MAX_RECIPIENTS,
    MAX_SEALED,
    MAX_SEALED_TOTAL,
    NEW_FOLLOWER_QUESTIONS_PER_HOUR,
    NEW_FOLLOWER_SECONDS,
    QUESTIONS_PER_HOUR,
    TRIBE_QUESTIONS_PER_HOUR,
    Answer,
    Question,
)
from chalicelib.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, TooManyRequests
from chalicelib.ports import Clock, Store
from chalicelib.services.channels import ChannelService
from chalicelib.services.organisations import OrganisationService

PAGE = 100
DAY = 86400
QUESTION_ID = re.compile(r"q_[a-z2-7]{16}")


class QuestionService:
    def __init__(
        self, store: Store, clock: Clock, orgs: OrganisationService, channels: ChannelService
    ) -> None:
        self._questions = QuestionRecords(store)
        self._members = MemberRecords(store)
        self._clock = clock
        self._orgs = orgs
        self._channels = channels

    def ask(
        self, who: Principal, channel_id: str, question_id: str, sealed: dict[str, str]
    ) -> dict[str, Any]:
        """Store a follower's sealed question (idempotent by its id: a retry converges)."""
        channel = self._followed_tribe(who, channel_id)
        if not QUESTION_ID.fullmatch(question_id):
            raise BadRequest("question_id must be q_ and 16 base32 characters")
        existing = self._questions.get(channel_id, question_id)
        if existing is not None:
            if existing.asker_device != who.device_id:
                raise Conflict("this question id is taken; make a new one")
            return existing.shown_to(who.device_id)
        if not 1 <= len(sealed) <= MAX_RECIPIENTS:
            raise BadRequest(f"a question is sealed to 1 to {MAX_RECIPIENTS} devices")
        for device_id, box in sealed.items():
            if not isinstance(box, str) or not 0 < len(box) <= MAX_SEALED:
                raise BadRequest(f"sealed box for {device_id}: 1 to {MAX_SEALED} characters")
            if device_id != who.device_id and not self._is_managers_device(channel, device_id):
                raise BadRequest(f"{device_id} is not a device of this tribe's managers")
        if sum(len(box) for box in sealed.values()) > MAX_SEALED_TOTAL:
            raise PayloadTooLarge(
                f"a question's sealed copies may take {MAX_SEALED_TOTAL} characters in all: shorten it"
            )
        now = self._clock.now()
        device = self._orgs.get_device(who.device_id)
        new = device is None or now - device.created_at < NEW_FOLLOWER_SECONDS
        self._count(who.device_id, channel_id, now // 3600, new=new)
        question = Question(
            question_id=question_id,
            org_id=who.org_id,
            channel_id=channel_id,
            asker=who.member_id,
            asker_device=who.device_id,
            asked_at=now,
            expires_at=now + self._channels.retention_days(channel) * DAY,
            sealed=sealed,
        )
        self._questions.save(question)
        return question.shown_to(who.device_id)

    def _count(self, device_id: str, channel_id: str, hour: int, *, new: bool) -> None:
        """One more question this hour from the device, then (from a device that joined in the
        last day) from the tribe's new followers, then to the tribe: 429 past any; a refusal
        counts in no later budget, so one device or one joiner cannot spend the others'."""
        if self._questions.count_asked(device_id, hour) > QUESTIONS_PER_HOUR:
            raise TooManyRequests(
                f"at most {QUESTIONS_PER_HOUR} questions an hour from one device; try again later"
            )
        if (
            new
            and self._questions.count_asked(channel_id, hour, by_new=True) > NEW_FOLLOWER_QUESTIONS_PER_HOUR
        ):
            raise TooManyRequests(
                f"this tribe's followers who joined in the last day sent {NEW_FOLLOWER_QUESTIONS_PER_HOUR} "
                "questions this hour: try again in the next hour"
            )
        if self._questions.count_asked(channel_id, hour) > TRIBE_QUESTIONS_PER_HOUR:
            raise TooManyRequests(
                f"this tribe's managers received {TRIBE_QUESTIONS_PER_HOUR} questions this hour, "
                "as many as they take: try again in the next hour"
            )

    def list(self, who: Principal, channel_id: str, cursor: str | None) -> dict[str, Any]:
        """The tribe's questions for its managers; a follower's own questions for them."""
        if who.role.is_follower:
            self._followed_tribe(who, channel_id)
        else:
            self._managed_tribe(who, channel_id)
        found, next_cursor = self._questions.page(channel_id, cursor, PAGE)
        now = self._clock.now()
        shown = [
            q.shown_to(who.device_id)
            for q in found
            if q.expires_at > now and (not who.role.is_follower or q.asker == who.member_id)
        ]
        return {"channel_id": channel_id, "questions": shown, "cursor": next_cursor}

    def answer(
        self,
        who: Principal,
        channel_id: str,
        question_id: str,
        sealed: str,
        published_message_id: str | None,
    ) -> dict[str, Any]:
        """A manager's answer, sealed to the asker's device; a later answer replaces it."""
        self._managed_tribe(who, channel_id)
        known = QUESTION_ID.fullmatch(question_id)
        question = self._questions.get(channel_id, question_id) if known else None
        if question is None or question.expires_at <= self._clock.now():
            raise NotFound(f"no question {question_id} in this tribe")
        if not 0 < len(sealed) <= MAX_SEALED:
            raise BadRequest(f"sealed: 1 to {MAX_SEALED} characters")
        answer = Answer(
            by_member=who.member_id,
            by_device=who.device_id,
            sealed=sealed,
            answered_at=self._clock.now(),
            published_message_id=published_message_id,
        )
        question = question.model_copy(update={"answer": answer})
        self._questions.save(question)
        return question.shown_to(who.device_id)

    # -- who is who ---------------------------------------------------------------------------

    def _followed_tribe(self, who: Principal, channel_id: str) -> Channel:
        access = self._channels.access(who, channel_id)  # 404 another organisation's
        if not who.role.is_follower:
            raise Forbidden("only a follower asks the town hall; members write in their channels")
        if access.membership is None or access.channel.kind is not ChannelKind.TRIBE:
            raise Forbidden("you do not follow this tribe")
        return access.channel

    def _managed_tribe(self, who: Principal, channel_id: str) -> Channel:
        access = self._channels.access(who, channel_id)
        require_may_manage(access.org_role, access.membership)
        if access.channel.kind is not ChannelKind.TRIBE:
            raise BadRequest("only a public tribe has questions")
        return access.channel

    def _is_managers_device(self, channel: Channel, device_id: str) -> bool:
        """An active device of an admin or owner of the organisation, or of an author of the tribe."""
        device = self._orgs.get_device(device_id)
        if device is None or device.org_id != channel.org_id or device.revoked_at is not None:
            return False
        member = self._members.get(channel.org_id, device.member_id)
        if member is None or member.removed_at is not None or member.role.is_follower:
            return False
        if member.role in (Role.ADMIN, Role.OWNER):
            return True
        membership = self._channels.membership(channel.channel_id, member.member_id)
        return membership is not None and membership.role is ChannelRole.AUTHOR
