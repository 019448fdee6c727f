"""SMTP's DATA split at its point of no return, so "did the server take this message?" has a recorded answer.

An SMTP server accepts a message only when the end-of-data terminator `<CRLF>.<CRLF>` arrives (RFC 5321
section 4.1.1.4); a connection lost before it means the message is discarded. aiosmtplib's `data()` writes
the body and the terminator together, so this client writes the body, awaits the caller's `commit_point`
(the dispatcher durably records the attempt as "committing"), and only then writes the terminator. A commit
point that raises (or a cancellation) closes the connection with the terminator unsent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosmtplib
from aiosmtplib.errors import SMTPDataError, SMTPServerDisconnected, SMTPTimeoutError
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

CommitPoint = Callable[[], Awaitable[None]]
END_OF_DATA = b".\r\n"  # after the body's own final CRLF: <CRLF>.<CRLF>


class EndOfDataUnanswered(Exception):
    """The terminator was written but no reply came: the server may or may not have accepted the message."""


def dot_stuffed(message: bytes) -> bytes:
    """The body as DATA carries it: CRLF line endings, a final CRLF, and a leading '.' doubled (RFC 5321 4.5.2)."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message))


class CommitPointSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client with one more method: DATA with a commit point just before the terminator."""

    async def data_with_commit_point(self, message: bytes, *, commit_point: CommitPoint) -> SMTPResponse:
        """Send DATA and the body, await `commit_point`, then the terminator; the server's final reply."""
        start = await self.execute_command(b"DATA")
        if start.code != SMTPStatus.start_input:
            raise SMTPDataError(start.code, start.message)
        protocol = self.protocol
        if protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        protocol.write(dot_stuffed(message))
        try:
            await commit_point()
        except BaseException:
            self.close()  # no terminator: the server discards what it has of the message
            raise
        try:
            protocol.write(END_OF_DATA)
            response = await protocol.read_response(timeout=self.timeout)
        except (SMTPServerDisconnected, SMTPTimeoutError, OSError) as error:
            self.close()
            raise EndOfDataUnanswered(type(error).__name__) from error
        except BaseException:
            self.close()  # cancelled while waiting: leave at once, no QUIT in the middle of a reply
            raise
        if response.code != SMTPStatus.completed:
            raise SMTPDataError(response.code, response.message)
        return response
