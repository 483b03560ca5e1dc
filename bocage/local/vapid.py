"""``bocage serve``'s VAPID key (Web Push): the setting if there is one, else a key generated
on the first start into the data directory, readable by its owner only.

Every replica must push with the same key (a subscription is bound to it): replicas sharing a
data directory share the file (the first to start creates it, exclusively); replicas on several
machines set ``BOCAGE_VAPID_PRIVATE_KEY``, as they set ``BOCAGE_CLUSTER_SECRET``.
"""

from __future__ import annotations

import dataclasses
import os

from chalicelib.settings import Settings

KEY_FILE = "vapid.key"


def with_vapid_key(settings: Settings) -> Settings:
    """The settings with a VAPID key; a key set but unreadable stops the start with why."""
    if settings.vapid_private_key:
        from chalicelib.adapters.web_push_crypto import VapidKey

        try:
            VapidKey.from_text(settings.vapid_private_key)
        except ValueError as exc:
            raise ValueError(
                f"BOCAGE_VAPID_PRIVATE_KEY is not a P-256 private key (base64url or PEM): {exc}"
            ) from exc
        return settings
    return dataclasses.replace(settings, vapid_private_key=load_or_create(settings.data_dir))


def load_or_create(data_dir: str) -> str:
    from chalicelib.adapters.web_push_crypto import VapidKey

    path = os.path.join(data_dir, KEY_FILE)
    os.makedirs(data_dir, mode=0o700, exist_ok=True)  # as the SQLite store makes it
    if not os.path.exists(path):
        # Written whole under a name of its own, then linked into place: a replica starting
        # at the same moment reads either no file or the whole key, and the first link wins.
        draft = f"{path}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as new:
            new.write(VapidKey.generate().private_text() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    with open(path, encoding="ascii") as key:
        return VapidKey.from_text(key.read()).private_text()
