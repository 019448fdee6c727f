"""Logging set-up: one line per record, quiet per-message faststream logs, and tracebacks without payloads.

Log lines carry ids and references only. An exception's message can repeat what it was given (pydantic's
ValidationError prints every input value, a database error the row), so a traceback is written with its frames
and exception types but never its messages.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class ScrubbingFormatter(logging.Formatter):
    """Formats tracebacks as frames and exception types only: an exception's message may hold personal data."""

    def formatException(self, ei: ExcInfo) -> str:
        _, error, _ = ei
        if error is None:
            return ""
        lines: list[str] = []
        for part in traceback.TracebackException.from_exception(error).format():
            # Frames and chaining lines are kept; the "Type: message" line of each exception loses its message.
            if part.startswith(("Traceback", "  ", "\nThe above", "\nDuring handling")) or not part.strip():
                lines.append(part)
            else:
                lines.append(part.split(":", 1)[0].rstrip() + ": (message withheld: it may hold personal data)\n")
        return "".join(lines).rstrip("\n")


def configure_logging(level: str = "INFO") -> None:
    """Configure the root logger once for a service process."""
    root = logging.getLogger()
    if getattr(root, "_safeguard_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that log message bodies, SQL parameters or request bodies at DEBUG stay at WARNING whatever
    # the level: faststream (message bodies), SQLAlchemy (parameters), httpx/httpcore (provider requests).
    for library in ("faststream", "sqlalchemy", "httpx", "httpcore"):
        logging.getLogger(library).setLevel(logging.WARNING)
    root._safeguard_configured = True  # type: ignore[attr-defined]
