"""Whether this device shares a window of a public tribe's recent posts with new followers
(docs/protocol.md, section 23): only on a choice signed by one of the tribe's managers, as this
device verifies them, never on the server's word.
"""

from __future__ import annotations

from typing import Any

from bocage.client.certs import TrustView, TrustWarning
from bocage.client.questions import is_manager
from chalicelib.domain.followers import HistoryChoice, dated_ahead, verify_history
from chalicelib.domain.membership_log import LogState
from chalicelib.domain.statements import HISTORY, StatementError, check_shape


def signs_for_managers(view: TrustView, state: LogState, by_device: str) -> bool:
    """Whether ``by_device`` is, now, a usable device of a manager of this tribe (an admin or
    owner, or an author in its verified log): asked of a new choice and, at every asking, of the
    one believed before, whose signer may have been revoked, demoted or have left since."""
    signer = view.usable(by_device) if by_device else None
    return signer is not None and is_manager(view, state, by_device, signer.member_id)


def withdrawn(channel_id: str) -> TrustWarning:
    """The warning when a believed choice's signer is no longer a manager's usable device."""
    return TrustWarning(
        "invalid_history",
        f"{channel_id}: the recent-history choice was signed by a device that is no longer a manager's: "
        "new followers read from joining",
    )


def verified_choice(
    statement: Any, view: TrustView, state: LogState, org_id: str, channel_id: str, now: int
) -> HistoryChoice | TrustWarning | None:
    """The choice if a usable device of a manager of this tribe (an admin or owner now, or an
    author in its verified log) signed it for this tribe, dated no further ahead of ``now``
    than the clock skew (a later date would outrank every real later choice until then); None
    when the server serves none."""
    if statement is None:
        return None

    def refused(message: str) -> TrustWarning:
        return TrustWarning("invalid_history", f"{channel_id}: {message}")

    try:
        by_device = str(check_shape(statement, HISTORY)["by_device"])
    except StatementError as exc:
        return refused(f"the recent-history choice is malformed ({exc}): new followers read from joining")
    signer = view.usable(by_device)
    if signer is None or not signs_for_managers(view, state, by_device):
        return refused("the recent-history choice is not signed by a manager's certified device")
    try:
        choice = verify_history(
            statement, org_id=org_id, channel_id=channel_id, sign_public_key=signer.sign_public_key
        )
    except StatementError as exc:
        return refused(f"the recent-history choice does not verify ({exc})")
    if dated_ahead(choice.issued_at, now):
        return refused("the recent-history choice is dated in the future: new followers read from joining")
    return choice
