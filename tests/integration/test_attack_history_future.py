"""Attack (review, LOW): a recent-history choice dated far in the future (a manager's device with a
wrong clock, or one stolen before its revocation, and a server that stores it without the 300 s
check) is believed, and from then on no real, later choice is: the device keeps "the newest by
`issued_at`" (bocage/client/ratchet.py:183-190, web setWindow), and ``verified_choice`` never
compares `issued_at` with its own clock (bocage/client/recent_history.py:33-57). Withdrawing it
(the signer demoted) keeps its date too (``withdraw_window``), so the lock outlives the signer."""

from __future__ import annotations

from typing import Any

from bocage.client.issuing import history_choice
from tests.integration.test_followers import public_tribe
from tests.integration.test_recent_history import plant
from tests.support import People, SignedApi

YEAR = 365 * 86400


def test_a_choice_dated_a_year_ahead_does_not_outlive_every_later_choice(
    people: People, api: SignedApi, container: Any
) -> None:
    cid, _ = public_tribe(people)
    people.join("ana")
    people.owner.add_member(cid, people.info["ana"]["member_id"], "author")
    ana, org_id = people.keys["ana"], people.info["owner"]["org_id"]
    ahead = history_choice(
        ana.signing, ana.device_id, org_id=org_id, channel_id=cid, days=0, now=api.clock.now() + YEAR
    )
    plant(container, cid, ahead)
    assert people.owner.recent_history(cid, force=True) == 0  # believed: signed by an author
    api.clock.advance(60)
    answer = people.owner.set_recent_history(cid, 7)  # the owner's real, later choice
    assert answer["days"] == 7, "a choice dated a year ahead locks out every real choice for a year"
