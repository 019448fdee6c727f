"""Email over SMTP into a real local SMTP server (aiosmtpd): the message arrives, its link survives decoding."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.notifications import mailbox
from services.notifications.channels import Delivery, DeliveryFailed
from services.notifications.channels.email import SmtpChannel
from services.notifications.domain import RenderedNotification
from services.notifications.local_mail import serve
from tests.support.tls import loopback_certificate
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

LINK = "https://console.example.org/api/v1/notifications/{id}/ack?token=" + "0123456789abcdef" * 3


def delivery(*, body: str, address: str = "lead@example.org") -> Delivery:
    notification_id = str(uuid.uuid4())
    message = RenderedNotification(
        title="URGENT safeguarding concern: SG-2026-MAILTEST",
        body=body,
        ack_url=LINK.format(id=notification_id),
        urgency="immediate",
    )
    return Delivery(notification_id, address, message)


def channel(port: int, *, security: str = "none", ca_file: Path | None = None) -> SmtpChannel:
    return SmtpChannel(
        host="127.0.0.1",
        port=port,
        security=security,
        username=None,
        password=None,
        sender="Safeguard <safeguard@example.org>",
        timeout_seconds=5,
        ca_file=str(ca_file) if ca_file else None,
    )


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        ("A concern needs your attention (reference SG-2026-MAILTEST).", "7bit"),
        ("A concern needs your attention – reference SG-2026-MAILTEST – sign in.", "quoted-printable"),
    ],
)
async def test_an_email_reaches_the_smtp_server_with_its_link_intact(tmp_path: Path, body: str, encoding: str) -> None:
    server = await serve(tmp_path / "mail")
    port = server.sockets[0].getsockname()[1]
    sent = delivery(body=body)
    try:
        message_id = await channel(port).send(sent)
        [kept] = await eventually(lambda: _kept(tmp_path / "mail"), what="the message kept by the SMTP server")
    finally:
        server.close()
        await server.wait_closed()
    message = mailbox.read(kept.path)
    assert message["Message-ID"] == message_id and kept.to == "lead@example.org"
    assert kept.subject == "URGENT safeguarding concern: SG-2026-MAILTEST"
    assert mailbox.links(message) == [sent.message.ack_url]
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and plain["Content-Transfer-Encoding"] == encoding
    html = message.get_body(preferencelist=("html",))
    assert html is not None and f'href="{sent.message.ack_url}"' in html.get_content()


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_an_email_goes_over_tls_to_a_server_the_configured_ca_vouches_for(tmp_path: Path, security: str) -> None:
    certificate = loopback_certificate(tmp_path)
    context = certificate.server_context
    server = await serve(
        tmp_path / "mail",
        starttls=context if security == "starttls" else None,
        implicit_tls=context if security == "tls" else None,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        await channel(port, security=security, ca_file=certificate.ca_file).send(delivery(body="Over TLS."))
        with pytest.raises(DeliveryFailed) as untrusted:
            await channel(port, security=security).send(delivery(body="Not trusted."))
    finally:
        server.close()
        await server.wait_closed()
    assert [mail.subject for mail in mailbox.kept(tmp_path / "mail")] == [
        "URGENT safeguarding concern: SG-2026-MAILTEST"
    ]
    assert untrusted.value.retryable is True  # a certificate problem is an operator's to fix; keep trying meanwhile


async def test_a_server_that_requires_starttls_refuses_plain_mail(tmp_path: Path) -> None:
    server = await serve(tmp_path / "mail", starttls=loopback_certificate(tmp_path).server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(DeliveryFailed) as refused:
            await channel(port, security="none").send(delivery(body="Plain."))
    finally:
        server.close()
        await server.wait_closed()
    assert "530" in str(refused.value) and mailbox.kept(tmp_path / "mail") == []


async def test_an_unreachable_mail_server_is_a_failure_worth_retrying(tmp_path: Path) -> None:
    server = await serve(tmp_path / "mail")
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(DeliveryFailed) as failed:
        await channel(port).send(delivery(body="x"))
    assert failed.value.retryable is True


async def _kept(directory: Path) -> list[mailbox.KeptMail]:
    return mailbox.kept(directory)
