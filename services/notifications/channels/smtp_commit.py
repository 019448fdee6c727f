"""SMTP's DATA split at its point of no return, so "did the server take this message?" has a recorded answer.

An SMTP server accepts a message only when the end-of-data terminator `<CRLF>.<CRLF>` arrives (RFC 5321
section 4.1.1.4); a connection lost before it means the message is discarded. aiosmtplib's `data()` writes
the body and the terminator together, so this client writes the body, then hands the caller's
`commit_point` a function that writes the terminator: the dispatcher records the attempt "committing",
sends its COMMIT to PostgreSQL and writes the terminator straight after, so a crash leaves either both on
their way or neither (see dispatcher.py). A commit point that raises before calling it (or a cancellation)
closes the connection with the terminator unsent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiosmtplib
from aiosmtplib.errors import SMTPDataError, SMTPServerDisconnected
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

# Given `end_of_data` (writes the terminator, synchronously), record the attempt and call it at the right instant.
CommitPoint = Callable[[Callable[[], None]], Awaitable[None]]
END_OF_DATA = b".\r\n"  # after the body's own final CRLF: <CRLF>.<CRLF>


class EndOfDataUnanswered(Exception):
    """The terminator was written but no reply came: the server may or may not have accepted the message."""


def dot_stuffed(message: bytes) -> bytes:
    """The body as DATA carries it: CRLF line endings, a final CRLF, and a leading '.' doubled (RFC 5321 4.5.2)."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message))


class CommitPointSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client with one more method: DATA with a commit point just before the terminator."""

    async def data_with_commit_point(self, message: bytes, *, commit_point: CommitPoint) -> SMTPResponse:
        """Send DATA and the body, let `commit_point` record the attempt and end the data; the server's reply."""
        start = await self.execute_command(b"DATA")
        if start.code != SMTPStatus.start_input:
            raise SMTPDataError(start.code, start.message)
        protocol = self.protocol
        if protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        protocol.write(dot_stuffed(message))
        # Listen for the reply from now on: it may come while the commit point is still awaiting its COMMIT,
        # and aiosmtplib drops a reply that arrives when nobody is reading.
        reply = asyncio.ensure_future(protocol.read_response(timeout=self.timeout))
        terminated = False

        def end_of_data() -> None:
            nonlocal terminated
            protocol.write(END_OF_DATA)
            terminated = True

        try:
            await commit_point(end_of_data)
            if not terminated:
                raise RuntimeError("the commit point returned without ending the data")
            response = await reply
        except Exception as error:
            reply.cancel()
            self.close()  # before the terminator: the server discards what it has of the message
            if not terminated:
                raise
            # After it (no reply, a timeout, a lost connection, a failed COMMIT): it may have been accepted.
            raise EndOfDataUnanswered(type(error).__name__) from error
        except BaseException:
            reply.cancel()
            self.close()  # cancelled: leave at once, no QUIT in the middle of the data or a reply
            raise
        if response.code != SMTPStatus.completed:
            raise SMTPDataError(response.code, response.message)
        return response
