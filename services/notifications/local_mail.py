"""A local SMTP server (aiosmtpd) that keeps every message it receives as an .eml file: `safeguard up`'s mail.

Run: `python -m services.notifications.local_mail` (SAFEGUARD_MAIL_SINK_DIR, SAFEGUARD_SMTP_PORT). Loopback only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from services.notifications import mailbox
from shared.contracts.envelope import utc_now

log = logging.getLogger(__name__)


class KeepInFolder:
    """aiosmtpd handler: each accepted message becomes `<UTC time>-<random>.eml` in the folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        name = f"{utc_now():%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(mailbox.keep, self.directory, raw, name=name)
        log.info("kept a message as %s.eml", name)
        return "250 Message accepted for delivery"


async def serve(
    directory: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Start listening (plain, STARTTLS required, or TLS from the first byte); the caller closes the server."""
    handler = KeepInFolder(directory)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command, addresses included

    def session() -> SMTP:
        return SMTP(handler, hostname="safeguard-local-mail", tls_context=starttls, require_starttls=bool(starttls))

    return await asyncio.get_running_loop().create_server(session, host, port, ssl=implicit_tls)


async def _run_forever(directory: Path, port: int) -> None:
    server = await serve(directory, port=port)
    log.info("local mail: listening on 127.0.0.1:%s, keeping mail in the mail folder", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    directory = Path(os.environ.get("SAFEGUARD_MAIL_SINK_DIR", ".safeguard-data/mail"))
    asyncio.run(_run_forever(directory, int(os.environ.get("SAFEGUARD_SMTP_PORT", "2525"))))


if __name__ == "__main__":
    main()
