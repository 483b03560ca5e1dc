"""A blob's lifecycle class on the object store (chalicelib/domain/files.py): the store's own
expiry is a backstop to the purge job, so it must outlive the message, by less than a class step."""

from __future__ import annotations

from chalicelib.domain.files import LIFETIME_CLASSES, lifetime_class


def test_a_blob_s_lifetime_class_outlives_its_message_by_less_than_a_class_step() -> None:
    day = 86400
    assert lifetime_class(0, 90 * day) == 92  # the default retention: 91 days and a day of skew
    assert lifetime_class(0, 365 * day) == 366
    assert lifetime_class(0, 1) == LIFETIME_CLASSES[0]
    assert lifetime_class(0, 5 * 365 * day) == LIFETIME_CLASSES[-1]  # the longest retention
    assert lifetime_class(0, 20 * 365 * day) == LIFETIME_CLASSES[-1]  # never beyond the backstop
    for days in range(1, 5 * 365 + 1):
        assert lifetime_class(0, days * day) > days
