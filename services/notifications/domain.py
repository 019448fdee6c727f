"""What a notification says: pure rendering that keeps names and concern text off lock screens."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts.events import NotificationRequestedPayload

_URGENCY_WORDS = {
    "immediate": "URGENT safeguarding concern",
    "high": "High-priority safeguarding concern",
    "medium": "Safeguarding concern",
    "low": "Safeguarding concern (low priority)",
}


@dataclass(frozen=True)
class RenderedNotification:
    """The words sent: a lock-screen-safe title and body, and where to acknowledge and open the case."""

    title: str
    body: str
    ack_url: str
    urgency: str = "medium"
    action: str = "Acknowledge that you have seen it"


def render(request: NotificationRequestedPayload, *, console_url: str, ack_token: str) -> RenderedNotification:
    """Lock-screen-safe text: urgency, reference and a link; never a name or what happened."""
    title = f"{_URGENCY_WORDS[request.urgency]}: {request.reference}"
    escalated = (
        " It has been escalated to you because nobody acknowledged it in time." if (request.escalation_rung) else ""
    )
    body = (
        f"A concern needs your attention (reference {request.reference}).{escalated} "
        "Sign in to the Safeguard console to read it and acknowledge."
    )
    ack_url = f"{console_url.rstrip('/')}/api/v1/notifications/{request.notification_id}/ack?token={ack_token}"
    return RenderedNotification(title=title, body=body, ack_url=ack_url, urgency=request.urgency)
