"""A local SMTP server (aiosmtpd) that keeps every message it receives as an .eml file: `safeguard up`'s mail.

Run: `python -m services.notifications.local_mail` (SAFEGUARD_MAIL_SINK_DIR, SAFEGUARD_SMTP_PORT). Loopback only.

It reads each connection's input in order, as an MTA reading its socket does: a message whose end of data
arrived just before the client closed the connection is kept. (aiosmtpd's own session stops at once when the
client's end of stream arrives, even with a complete message still unread in its buffer.)
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


class ReadsInOrder(SMTP):
    """aiosmtpd's session, except that the client closing its side is noticed after everything it sent first."""

    def eof_received(self) -> bool | None:
        if self.session is not None and self.session.ssl is not None:
            return super().eof_received()  # TLS cannot stay half-open: aiosmtpd's own handling
        # Only tell the reader: the session reads what is buffered (a whole message, or a part it then discards)
        # and ends on the IncompleteReadError that follows (handle_exception).
        return asyncio.StreamReaderProtocol.eof_received(self)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, asyncio.IncompleteReadError):
            if self.transport is not None:
                self.transport.close()  # everything the client sent has been read
            return "421 4.4.2 Connection closed by the client"
        return await super().handle_exception(error)


async def serve(
    directory: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    handler: KeepInFolder | None = None,
    session_class: type[ReadsInOrder] = ReadsInOrder,
) -> asyncio.Server:
    """Start listening (plain, STARTTLS required, or TLS from the first byte); the caller closes the server."""
    handler = handler or KeepInFolder(directory)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command, addresses included

    def session() -> SMTP:
        return session_class(
            handler, hostname="safeguard-local-mail", tls_context=starttls, require_starttls=bool(starttls)
        )

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
