"""Notifications' and audit's handlers over the in-memory fakes, with a channel that only records what it was given."""

from __future__ import annotations

from datetime import UTC, datetime

from services.audit.domain import verify_chain
from services.audit.handlers import on_events
from shared.contracts.events import PersonRef
from tests.support.factories import concern_received
from tests.support.fakes import FakeLedger, fake_work

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LEAD = PersonRef(person_id="p-lead", name="Mx Example Lead", role="designated_safeguarding_lead")


async def test_audit_puts_a_batch_on_each_schools_chain_in_order() -> None:
    ledger = FakeLedger()
    batch = [concern_received(school_id="st-marks"), concern_received(school_id="oak-hill"), concern_received()]
    await on_events(batch, work=fake_work(), ledger=ledger, stream_sequences={})
    chain = await ledger.chain(fake_work().session, school_id="st-marks")
    assert [e.event["event_id"] for e in chain] == [str(batch[0].event_id), str(batch[2].event_id)]
    assert verify_chain(chain) == []
