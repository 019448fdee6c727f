"""Audit service wiring: one durable consumer of every domain event, signed checkpoints over the ledger, and
the queries (replay, verify, export) the console's auditor view asks over request/reply."""

from __future__ import annotations

import logging
from functools import partial

from faststream import FastStream

from services.audit.checkpoint import Checkpointer, declare_checkpoint_publisher, publish_checkpoint
from services.audit.checks import verify_ledger
from services.audit.exports import ExportFiles
from services.audit.handlers import on_events
from services.audit.heads import WitnessLog, load_or_create_signing_key
from services.audit.kek import load_or_create_kek
from services.audit.keyring import KeyRing
from services.audit.query_edge import AuditQueries, register_queries
from services.audit.query_gate import QueryGate
from services.audit.settings import AuditSettings
from services.audit.store import SCHEMA, SqlLedger
from shared.background import PollingLoop
from shared.collector import settle_collector
from shared.consumer import every_batch
from shared.contracts.envelope import Event, utc_now
from shared.contracts.record_events import KeyShredded, RecordViewed
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings
from shared.subjects import AUDIT_LEDGER
from shared.tracing import shutdown_tracing

log = logging.getLogger(__name__)


class AuditService:
    """Audit's runtime plus what it adds: verification at start and signed checkpoints on a schedule."""

    def __init__(self, settings: Settings, audit_settings: AuditSettings) -> None:
        self.runtime = ServiceRuntime(settings, service="audit", schema=SCHEMA)
        self.keyring = KeyRing(load_or_create_kek(audit_settings.kek_path))
        append = partial(on_events, ledger=SqlLedger(sealer=self.keyring))
        append.__doc__ = "Append every domain event to its school's hash-chained ledger, a pulled batch at a time."
        self.ledger_edge = self.runtime.consumer(
            Event,
            durable=AUDIT_LEDGER,
            batch_handler=append,
            filter_subject=self.runtime.subjects.all_events,
            batch_size=256,
            # Claimed by the append's own read (the ledger holds each event id once), in the batch's transaction.
            claims_in_statement=every_batch,
            claim_in_transaction=True,
        )
        declare_checkpoint_publisher(self.runtime.broker, subjects=self.runtime.subjects)
        # Views and shreddings recorded by the audit command line, through audit's outbox.
        self.runtime.publishes(RecordViewed, KeyShredded)
        self.witness = WitnessLog(audit_settings.witness_log_path)
        self.key = load_or_create_signing_key(audit_settings.signing_key_path)
        self.checkpointer = Checkpointer(key=self.key, witness=self.witness, clock=utc_now)
        self.exports = ExportFiles()
        gate = QueryGate.from_settings(actor_keys_dir=settings.actor_keys_dir, policy_dir=settings.policy_dir)
        queries = AuditQueries(
            runtime=self.runtime,
            gate=gate,
            witness=self.witness,
            public_key=self.key.public_key(),
            exports=self.exports,
            keyring=self.keyring,
            clock=utc_now,
        )
        register_queries(self.runtime, queries)  # the console's auditor view: replay, verify, export
        self.loop = PollingLoop(
            self.checkpoint, name="audit-checkpoint", poll_seconds=audit_settings.checkpoint_seconds
        )

    async def start(self) -> None:
        """Connect, migrate, refuse a wrong KEK, verify the record (a failure is an alert, not a stop), checkpoint."""
        await self.runtime.start()
        async with self.runtime.sessions() as session:
            await self.keyring.check(session)  # WrongKeyEncryptionKey: nothing could be sealed or read
            reports = await verify_ledger(session, witness=self.witness, public_key=self.key.public_key())
        for report in reports:
            if not report.ok:  # standing alert: the checkpointer also refuses to sign over this school
                log.error("AUDIT VERIFY FAILED for school %s: %s", report.school_id, report.problem)
        self.loop.start()

    async def checkpoint(self) -> int:
        """Sign a head for each school whose ledger grew, write it to the witness log and publish it."""
        async with self.runtime.sessions() as session:
            events = await self.checkpointer.checkpoint_once(session)
        for event in events:
            await publish_checkpoint(self.runtime.broker, event, subjects=self.runtime.subjects)
        return len(events)

    async def stop(self) -> None:
        await self.loop.stop()
        await self.runtime.stop()
        self.exports.close()


def create_app(settings: Settings, audit_settings: AuditSettings | None = None) -> tuple[FastStream, ServiceRuntime]:
    """Build the audit app for these settings."""
    service = AuditService(settings, audit_settings or AuditSettings())
    app = FastStream(service.runtime.broker, on_startup=[service.start], after_shutdown=[service.stop])
    return app, service.runtime


def main() -> None:
    import asyncio

    app, _ = create_app(get_settings())
    settle_collector()
    try:
        asyncio.run(app.run())
    finally:
        shutdown_tracing()  # export the spans still queued
