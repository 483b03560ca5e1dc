"""Whether this device shares a window of a public tribe's recent posts with new followers
(docs/protocol.md, section 23): only on a choice signed by one of the tribe's managers, as this
device verifies them, never on the server's word.
"""

from __future__ import annotations

from typing import Any

from bocage.client.certs import TrustView, TrustWarning
from bocage.client.questions import is_manager
from chalicelib.domain.followers import HistoryChoice, verify_history
from chalicelib.domain.membership_log import LogState
from chalicelib.domain.statements import HISTORY, StatementError, check_shape


def verified_choice(
    statement: Any, view: TrustView, state: LogState, org_id: str, channel_id: str
) -> HistoryChoice | TrustWarning | None:
    """The choice if a usable device of a manager of this tribe (an admin or owner now, or an
    author in its verified log) signed it for this tribe; None when the server serves none."""
    if statement is None:
        return None

    def refused(message: str) -> TrustWarning:
        return TrustWarning("invalid_history", f"{channel_id}: {message}")

    try:
        by_device = str(check_shape(statement, HISTORY)["by_device"])
    except StatementError as exc:
        return refused(f"the recent-history choice is malformed ({exc}): new followers read from joining")
    signer = view.usable(by_device)
    if signer is None or not is_manager(view, state, by_device, signer.member_id):
        return refused("the recent-history choice is not signed by a manager's certified device")
    try:
        return verify_history(
            statement, org_id=org_id, channel_id=channel_id, sign_public_key=signer.sign_public_key
        )
    except StatementError as exc:
        return refused(f"the recent-history choice does not verify ({exc})")
