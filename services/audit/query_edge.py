"""Audit queries over NATS request/reply: replay a school or a case as of a moment, verify, export in chunks.

Every answer that shows something is recorded first: the assertion is marked used and a `record.viewed` event
goes into audit's outbox in one transaction, committed before the reply leaves. A refusal records nothing.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from faststream import Context
from faststream.nats.message import NatsMessage
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.export import Selection
from services.audit.exports import ExportFiles, ExportGone
from services.audit.heads import WitnessLog
from services.audit.keyring import KeyRing
from services.audit.queries import case_chronology, cases_about, replay_school, verify_record
from services.audit.query_gate import USED_ASSERTIONS, Asker, QueryGate, QueryRefused
from shared.contracts.envelope import Actor
from shared.contracts.record_events import RecordKind, RecordViewed
from shared.read_audit import record_viewed
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

QUERY_QUEUE = "audit-queries"
QUERIES = ("replay", "case", "verify", "export")


def refused(code: str, error: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "error": error}


class _Replayed(Exception):
    pass


def _document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise QueryRefused("invalid", "the query is not JSON") from None
    if not isinstance(document, dict):
        raise QueryRefused("invalid", "the query must be a JSON object")
    return document


def _moment(document: dict[str, Any], *, now: datetime) -> datetime:
    """The query's `as_of` (ISO 8601 with a time zone), or now."""
    text = document.get("as_of")
    if text in (None, ""):
        return now
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise QueryRefused("invalid", "as_of is not an ISO 8601 moment") from None
    if moment.tzinfo is None:
        raise QueryRefused("invalid", "as_of needs a time zone")
    return moment


@dataclass
class AuditQueries:
    """Answers the queries of one audit instance."""

    runtime: ServiceRuntime
    gate: QueryGate
    witness: WitnessLog
    public_key: Ed25519PublicKey
    exports: ExportFiles
    keyring: KeyRing
    clock: Callable[[], datetime]

    async def answer(self, body: bytes) -> dict[str, Any]:
        """The reply to one query: `{"ok": true, ...}` once recorded, or `{"ok": false, "code", "error"}`."""
        now = self.clock()
        try:
            document = _document(body)
            asker = self.gate.asker(document, now=now)
            if document.get("query") not in QUERIES:
                raise QueryRefused("invalid", f"query must be one of {', '.join(QUERIES)}")
            async with self.runtime.sessions() as session, session.begin():
                reply, views = await self._read(session, document, asker=asker, now=now)
            await self._record(
                asker,
                [
                    record_viewed(**view, viewer=Actor(id=asker.person_id, role=asker.role), now=now, via="console")
                    for view in views
                ],
            )
        except QueryRefused as refusal:
            log.warning("audit query refused (%s)", refusal.code)
            return refused(refusal.code, refusal.reason)
        except _Replayed:
            return refused("replayed", "this assertion was already used: each query needs a fresh one")
        return {"ok": True, **reply}

    async def _record(self, asker: Asker, views: list[RecordViewed]) -> None:
        async with self.runtime.uow.begin() as work:
            if not await work.claim(USED_ASSERTIONS, [asker.token_id]):
                raise _Replayed
            work.emit(views)

    async def _read(
        self, session: AsyncSession, document: dict[str, Any], *, asker: Asker, now: datetime
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        school_id = str(document["school_id"])
        query = document["query"]
        as_of = _moment(document, now=now)
        when = f"as of {as_of.isoformat()}"

        def view(record_id: str, kind: RecordKind, name: str, reason: str) -> dict[str, Any]:
            return {"record_id": record_id, "school_id": school_id, "record_kind": kind, "view": name, "reason": reason}

        if query == "replay":
            try:
                offset = int(document.get("offset") or 0)
            except (TypeError, ValueError):
                raise QueryRefused("invalid", "offset must be a whole number") from None
            page = await replay_school(
                session, keyring=self.keyring, school_id=school_id, as_of=as_of, viewer=asker.person_id, offset=offset
            )
            return {**page, "as_of": as_of.isoformat()}, [
                view(school_id, "school_record", "replay", f"audit replay of the school's cases {when}")
            ]
        if query == "case":
            case_id = str(document.get("case_id", ""))
            found = await case_chronology(
                session, keyring=self.keyring, school_id=school_id, case_id=case_id, as_of=as_of, viewer=asker.person_id
            )
            if found is None:
                raise QueryRefused("not_found", f"no case {case_id} at {school_id} {when}")
            return {**found, "as_of": as_of.isoformat()}, [view(case_id, "case", "replay", f"audit replay {when}")]
        if query == "verify":
            result = await verify_record(session, school_id=school_id, witness=self.witness, public_key=self.public_key)
            return result, [view(school_id, "school_record", "verify", "audit verification of the record")]
        left_out = await cases_about(session, keyring=self.keyring, school_id=school_id, viewer=asker.person_id)
        try:
            made = await self.exports.write(
                session,
                school_id=school_id,
                selection=Selection(leave_out=left_out),
                witness=self.witness,
                public_key=self.public_key,
                person_id=asker.person_id,
                now=now,
            )
        except LookupError:
            raise QueryRefused("not_anchored", "no signed head for this school yet: nothing can be proved") from None
        reply = {
            "export_id": made.export_id,
            "filename": made.filename,
            "size": made.size,
            "sha256": made.sha256,
            "entries": made.entries,
        }
        return reply, [view(school_id, "school_record", "export", "audit export bundle")]

    async def chunk(self, body: bytes) -> dict[str, Any] | None:
        """A chunk of an export this instance holds; None when another instance made it (that one answers)."""
        now = self.clock()
        try:
            document = _document(body)
        except QueryRefused:
            return None
        export_id = document.get("export_id")
        if not self.exports.owns(export_id):
            return None
        try:
            claims = self.gate.claims(document, now=now)
            offset = int(document.get("offset", 0))
            data, last = self.exports.chunk(str(export_id), offset=offset, person_id=claims.person_id, now=now)
        except QueryRefused as refusal:
            return refused(refusal.code, refusal.reason)
        except (ExportGone, ValueError, TypeError):
            return refused("gone", "that export is no longer here: ask for a new one")
        return {"ok": True, "data": base64.b64encode(data).decode(), "next": offset + len(data), "last": last}


def register_queries(runtime: ServiceRuntime, queries: AuditQueries) -> None:
    """Answer queries in a queue group (any instance), and export chunks from the instance holding the file."""

    @runtime.broker.subscriber(
        runtime.subjects.audit_query,
        queue=QUERY_QUEUE,
        title="audit-queries",
        description="Replay, verify and export a school's record for the console (request/reply)",
    )
    async def on_audit_query(body: Any, message: NatsMessage = Context("message")) -> dict[str, Any]:
        try:
            return await queries.answer(message.body)
        except Exception:
            log.exception("an audit query could not be answered")
            return refused("unavailable", "the record could not be read just now; try again")

    @runtime.broker.subscriber(
        runtime.subjects.audit_export,
        title="audit-export-chunks",
        description="Chunks of an export bundle, answered by the audit instance that wrote it (request/reply)",
        no_reply=True,
    )
    async def on_export_chunk(body: Any, message: NatsMessage = Context("message")) -> None:
        try:
            reply = await queries.chunk(message.body)
        except Exception:
            log.exception("an export chunk could not be read")
            reply = refused("unavailable", "the export could not be read just now; try again")
        if reply is not None and message.reply_to:
            await message.raw_message.respond(json.dumps(reply).encode())
