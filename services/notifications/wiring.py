"""What the settings call for: the link signer, the channel adapters and the extra routes (app.py calls these)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifications.channels import Channel, EmailFileSink, LogChannel
from services.notifications.channels.email import SmtpChannel
from services.notifications.channels.push import WebPushChannel
from services.notifications.channels.sms import TwilioStyleSms
from services.notifications.links import AckLinks
from services.notifications.push_http import push_router
from services.notifications.settings import NotificationSettings
from services.notifications.store import SqlDeliveries as Deliveries
from services.notifications.subscriptions import SqlPushSubscriptions
from services.notifications.vapid import KeptVapidKey
from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelKit:
    """The configured channels by name, and what the push routes need."""

    channels: dict[str, Channel]
    subscriptions: SqlPushSubscriptions
    vapid: KeptVapidKey
    options: NotificationSettings

    def start(self) -> None:
        """Nothing to start: a channel opens its connections at its first send."""

    async def stop(self) -> None:
        """Close what the channels keep open between sends (the push channel's connections)."""
        for channel in self.channels.values():
            close = getattr(channel, "aclose", None)
            if close is not None:
                await close()


class MissingSigningKey(RuntimeError):
    """No kept key for acknowledgement links, outside development."""


def ack_links(settings: Settings, options: NotificationSettings) -> AckLinks:
    """The link signer: the kept key; a key that dies with the process only under the development flag."""
    if settings.signing_key:
        key = settings.signing_key.encode()
    elif options.ephemeral_signing_key:
        log.warning("SAFEGUARD_SIGNING_KEY is unset: acknowledgement links will not survive a restart (dev only)")
        key = secrets.token_bytes(32)
    else:
        # A random key per process would void every link already sent at the next restart, and differ
        # between instances: refuse to start instead.
        raise MissingSigningKey(
            "SAFEGUARD_SIGNING_KEY is unset: set a kept secret (e.g. `openssl rand -base64 32`), "
            "or SAFEGUARD_EPHEMERAL_SIGNING_KEY=1 for development only"
        )
    return AckLinks(key, lifetime=timedelta(days=options.ack_link_days))


def build_channels(
    settings: Settings, *, sessions: async_sessionmaker[AsyncSession], options: NotificationSettings | None = None
) -> ChannelKit:
    """Real adapters where configured, local stand-ins elsewhere (the VAPID key is made when first needed)."""
    options = options or NotificationSettings()
    key_file = Path(options.vapid_key_file or Path(settings.mail_sink_dir).parent / "vapid-private.pem")
    vapid = KeptVapidKey(key_file)
    subscriptions = SqlPushSubscriptions(sessions)
    push = WebPushChannel(
        subscriptions,
        vapid=vapid,
        subject=options.vapid_subject,
        ttl_seconds=options.push_ttl_seconds,
        timeout_seconds=options.push_timeout_seconds,
    )
    channels: dict[str, Channel] = {
        "email": email_channel(options, mail_folder=settings.mail_sink_dir),
        "push": push,
        "sms": sms_channel(options),
        "log": LogChannel("log"),
    }
    return ChannelKit(channels, subscriptions, vapid, options)


def email_channel(options: NotificationSettings, *, mail_folder: str) -> Channel:
    """SMTP when a host is configured; otherwise the folder `safeguard mail` reads."""
    if not options.smtp_host:
        return EmailFileSink(mail_folder, sender=options.mail_from)
    password = options.smtp_password.get_secret_value() if options.smtp_password else None
    return SmtpChannel(
        host=options.smtp_host,
        port=options.smtp_port,
        security=options.smtp_security,
        username=options.smtp_username,
        password=password,
        sender=options.mail_from,
        timeout_seconds=options.smtp_timeout_seconds,
        ca_file=options.smtp_ca_file,
    )


def sms_channel(options: NotificationSettings) -> Channel:
    """The Twilio-style adapter when a provider URL is configured; otherwise SMS is only logged (by id)."""
    if not options.sms_base_url:
        return LogChannel("sms")
    return TwilioStyleSms(
        base_url=options.sms_base_url,
        account_sid=options.sms_account_sid,
        auth_token=options.sms_auth_token.get_secret_value(),
        sender=options.sms_from,
        timeout_seconds=options.sms_timeout_seconds,
        status_callback=options.sms_status_callback_url,
    )


def channel_routers(
    kit: ChannelKit,
    *,
    sessions: async_sessionmaker[AsyncSession],
    deliveries: Deliveries,
    signer: AckLinks,
    clock: Callable[[], datetime],
) -> list[APIRouter]:
    """The staff page and push subscription routes."""

    async def link_holder(notification_id: str, token: str) -> str | None:
        async with sessions() as session:
            row = await deliveries.get(session, notification_id)
        if row is None:
            return None
        person_id = str(row.recipient_person_id)
        return person_id if signer.check(notification_id, token, person_id=person_id, now=clock()) == "valid" else None

    operator = kit.options.push_operator_token
    return [
        push_router(
            subscriptions=kit.subscriptions,
            identify=link_holder,
            application_server_key=kit.vapid.public,
            operator_token=operator.get_secret_value() if operator else None,
            clock=clock,
        )
    ]
