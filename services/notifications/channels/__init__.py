"""Channel adapters: each sends one rendered notification and says whether it left.

Every channel keeps one contract: `async send(Delivery) -> provider id`, raising `DeliveryFailed` with
`retryable` saying whether trying again may help. `build_channels` (in `.wiring`) picks the adapters the
settings configure.
"""

from services.notifications.channels.base import Channel, Delivery, DeliveryFailed, LogChannel, SentUnconfirmed
from services.notifications.channels.email import EmailFileSink

__all__ = ["Channel", "Delivery", "DeliveryFailed", "EmailFileSink", "LogChannel", "SentUnconfirmed"]
