"""The console asks audit for the record (replay, verify, export) on behalf of the signed-in person.

Each request carries a fresh actor token for audience `audit`, signed with the console's issuer key, naming the
person, their home school and their console role: audit believes `auditor` only from the console, and looks a
trust safeguarding lead up in the school's policy. The console never reads the audit schema itself.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.console.access import Principal
from services.console.commands import vouch

log = logging.getLogger(__name__)

AUDIENCE = "audit"
Ask = Callable[[bytes, str], Awaitable[bytes]]  # (body, subject) -> reply body
UNAVAILABLE = {"ok": False, "code": "unavailable", "error": "the audit service did not answer; try again"}


class ExportBroken(Exception):
    """An export stopped before its last chunk."""


class AuditClient:
    """Sends queries to audit and reads export bundles back a chunk at a time."""

    def __init__(
        self,
        ask: Ask,
        *,
        query_subject: str,
        export_subject: str,
        key: Ed25519PrivateKey,
        clock: Callable[[], datetime],
    ) -> None:
        self._ask = ask
        self._query_subject = query_subject
        self._export_subject = export_subject
        self._key = key
        self._clock = clock

    def assertion(self, principal: Principal) -> str:
        """A fresh token saying the console signed this person in, in this console role."""
        return vouch(principal, key=self._key, audience=AUDIENCE, now=self._clock(), role=principal.role)

    async def _send(self, subject: str, document: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = json.loads(await self._ask(json.dumps(document).encode(), subject))
        except Exception as error:  # a timeout or no responder: say so, never a traceback with record details
            log.warning("audit %s got no answer: %s", document.get("query", "export chunk"), type(error).__name__)
            return dict(UNAVAILABLE)
        return answer if isinstance(answer, dict) else {"ok": False, "code": "invalid", "error": "unreadable answer"}

    async def query(self, principal: Principal, query: str, *, school_id: str, **fields: Any) -> dict[str, Any]:
        """Audit's answer to `query` about `school_id`: `{"ok": true, ...}` or `{"ok": false, "code", "error"}`."""
        document = {"query": query, "school_id": school_id, **fields, "assertion": self.assertion(principal)}
        return await self._send(self._query_subject, document)

    async def chunks(self, principal: Principal, export_id: str) -> AsyncIterator[bytes]:
        """The export's bytes in order; ExportBroken if audit stops answering before the last chunk."""
        offset, last = 0, False
        while not last:
            document = {"export_id": export_id, "offset": offset, "assertion": self.assertion(principal)}
            answer = await self._send(self._export_subject, document)
            if not answer.get("ok"):
                raise ExportBroken(str(answer.get("code", "refused")))
            data = base64.b64decode(answer["data"])
            offset, last = offset + len(data), bool(answer["last"])
            if not data and not last:
                raise ExportBroken("empty")
            yield data
