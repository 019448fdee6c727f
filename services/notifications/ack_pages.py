"""The pages an acknowledgement link shows: pure HTML, every value escaped."""

from __future__ import annotations

import html

_HEAD = (
    "<!doctype html><html lang=en><meta charset=utf-8>"
    "<meta name=viewport content='width=device-width, initial-scale=1'><title>{title}</title>"
    "<body style='font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem'>"
)


def _page(title: str, body: str) -> str:
    return _HEAD.format(title=html.escape(title)) + body + "</body></html>"


def confirm_page(*, notification_id: str, token: str, page_check: str) -> str:
    """One button: opening a link (or a mail scanner fetching it) never acknowledges by itself."""
    action = f"/api/v1/notifications/{html.escape(notification_id)}/ack?token={html.escape(token)}"
    staff = f"/staff/?n={html.escape(notification_id)}&amp;t={html.escape(token)}"
    return _page(
        "Acknowledge",
        f"<form method=post action='{action}'>"
        f"<input type=hidden name=page_check value='{html.escape(page_check)}'>"
        "<p>Acknowledge that you have seen this message and are acting on it.</p>"
        "<button type=submit>Acknowledge</button></form>"
        f"<p><a href='{staff}'>Get alerts on this device</a></p>",
    )


def done_page(*, already: bool) -> str:
    said = "It was already acknowledged." if already else "Thank you: your acknowledgement is recorded."
    return _page("Acknowledged", f"<p>{said}</p><p>Sign in to Safeguard to read the case.</p>")


def expired_page(*, sign_in_url: str) -> str:
    """After expiry: say so plainly and offer the way in that does not depend on the link."""
    return _page(
        "Link expired",
        "<p>This acknowledgement link has expired.</p>"
        f"<p><a href='{html.escape(sign_in_url, quote=True)}'>Sign in to Safeguard</a> to see the concern and "
        "acknowledge it there.</p>",
    )
