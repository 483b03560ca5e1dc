"""A small typed event bus: services publish domain events, the wiring subscribes handlers.

It breaks the construction cycle between organisations and channels (channels need the
organisation service; the organisation service's events need channels) without optional
collaborators set after construction. Publishing an event nobody handles is a wiring bug and
raises, so no event is ever dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from chalicelib.domain.events import Event

E = TypeVar("E", bound=Event)


class UnhandledEvent(LookupError):
    """An event was published with no handler subscribed: the container is wired wrong."""


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Callable[[Any], None]]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        self._handlers[event_type].append(handler)

    def publish(self, event: Event) -> None:
        """Run every handler of the event's type, in subscription order, synchronously.

        Handlers are idempotent: a caller that crashes midway retries and publishes again.
        """
        handlers = self._handlers.get(type(event))
        if not handlers:
            raise UnhandledEvent(f"no handler for {type(event).__name__}")
        for handler in handlers:
            handler(event)
