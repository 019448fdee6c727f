"""Confidentiality at rest against real PostgreSQL: names, contacts and narrative never reach the ledger table in
the clear; shredding a person's, a case's or a school's key erases them for good while every hash, head and
proof still verifies; a wrong key-encryption key is refused, never mistaken for erasure."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.audit.app import AuditService, create_app
from services.audit.checkpoint import Checkpointer
from services.audit.checks import verify_school
from services.audit.domain import event_of, verify_chain
from services.audit.export import Selection, export_bundle, write_decrypted_view
from services.audit.heads import WitnessLog, load_or_create_signing_key
from services.audit.kek import LocalKek, WrongKeyEncryptionKey
from services.audit.keyring import KeyRing
from services.audit.replay import replay_case
from services.audit.sealing import ERASED, new_key
from services.audit.settings import AuditSettings
from services.audit.shred import shred
from services.audit.store import SCHEMA, SqlLedger, ledger
from services.audit.verify_export import verify_bundle
from services.routing.case import fold
from services.routing.domain import case_id_for
from shared.contracts.envelope import Actor, Event
from shared.db import asyncpg_dsn, make_engine, session_factory, transaction
from shared.migrations import migrate
from shared.settings import Settings
from tests.support.audit_cli import safeguard
from tests.support.audit_keys import sealing_ledger
from tests.support.factories import concern_received
from tests.support.running import running
from tests.support.samples import current_classes, personal_strings, sample_event, strings_in, tokens
from tests.support.waiting import eventually
from tests.unit.routing_case.cases import opening_events, run

pytestmark = pytest.mark.integration
SCHOOL = "st-marks"
OFFICER = Actor(id="dpo-1", role="data_protection_officer")
NOW = datetime(2033, 9, 1, tzinfo=UTC)


@dataclass
class Audit:
    sessions: async_sessionmaker[AsyncSession]
    keyring: KeyRing
    checkpointer: Checkpointer
    witness: WitnessLog
    public_key: Ed25519PublicKey
    settings: Settings

    async def append(self, events: list[Event[Any]]) -> None:
        async with transaction(self.sessions) as session:
            await SqlLedger(sealer=self.keyring).append(session, events)
            await self.checkpointer.checkpoint_once(session)

    async def verified(self, school_id: str = SCHOOL) -> bool:
        async with transaction(self.sessions) as session:
            report = await verify_school(session, school_id=school_id, witness=self.witness, public_key=self.public_key)
        assert report.ok, report.problem
        return report.anchored == report.entries

    async def shred(self, scope: Any, subject: str = "", school_id: str = SCHOOL) -> Any:
        async with transaction(self.sessions) as session:
            return await shred(
                session,
                keyring=self.keyring,
                school_id=school_id,
                scope=scope,
                subject=subject,
                basis="retention_ended",
                actor=OFFICER,
                now=NOW,
            )

    async def case(self, case_id: str, *, keyring: KeyRing | None = None) -> dict[str, Any]:
        async with transaction(self.sessions) as session:
            replayed = await replay_case(session, keyring=keyring or self.keyring, school_id=SCHOOL, case_id=case_id)
        assert replayed is not None
        return replayed

    async def raw(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(asyncpg_dsn(self.settings.database_url))
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()


@pytest.fixture
async def audit(settings: Settings, tmp_path: Path) -> AsyncIterator[Audit]:
    engine = make_engine(settings.database_url, pool_size=2)
    await migrate(engine, service="audit", schema=SCHEMA)
    witness = WitnessLog(tmp_path / "witness.jsonl")
    key = load_or_create_signing_key(tmp_path / "signing.pem")
    checkpointer = Checkpointer(key=key, witness=witness, clock=lambda: datetime.now(UTC))
    keyring = KeyRing(LocalKek(new_key()))
    yield Audit(session_factory(engine), keyring, checkpointer, witness, key.public_key(), settings)
    await engine.dispose()


def a_worked_case(school_id: str = SCHOOL) -> tuple[str, list[Event[Any]]]:
    """A concern from a parent naming a child, its case, two learners linked, a decision with its reasons."""
    concern = concern_received(
        school_id=school_id,
        reporter={"role": "parent_carer", "name": "Pat Parentname", "contact": "pat@example.org"},
        people=[{"role": "learner", "involvement": "victim", "name": "Kim Childname", "age": 11}],
        details="Kim was sent messages by an older pupil",
    )
    case_id = case_id_for(concern)
    opening = [
        event.model_copy(update={"correlation_id": concern.correlation_id})
        for event in opening_events(case_id=case_id, school_id=school_id)
    ]
    state = fold(opening)
    alex = {"person_id": "learner-7", "role": "learner", "involvement": "victim", "name": "Alex Sevenname", "age": 12}
    blake = {"person_id": "learner-8", "role": "learner", "involvement": "witness", "name": "Blake Eightname"}
    first = run(state, "link_person", person=alex)
    state = fold(first, state=state)
    second = run(state, "link_person", minutes=2, person=blake)
    state = fold(second, state=state)
    decided = run(state, "record_decision", minutes=3, kind="not_refer", decision="Support in school",
                  reasons="Alex and Blake spoke with the DSL")  # fmt: skip
    return case_id, [concern, *opening, *first, *second, *decided]


def people(replayed: dict[str, Any]) -> dict[str, str | None]:
    return {person["person_id"]: person["name"] for person in replayed["case"]["people"]}


def payloads(replayed: dict[str, Any], event_type: str) -> list[dict[str, Any]]:
    return [line["payload"] for line in replayed["chronology"] if line["type"] == event_type]


async def test_no_name_contact_or_narrative_of_any_event_type_reaches_the_ledger_table(audit: Audit) -> None:
    token = tokens("marker")  # unique across every event
    events = [sample_event(cls, token=token) for cls in current_classes()]
    documents = [event.model_dump(mode="json") for event in events]
    personal = set().union(*(personal_strings(document) for document in documents))
    readable = set().union(*(strings_in(document) for document in documents)) - personal
    await audit.append(events)
    stored = "\n".join(
        row["entry"] for row in await audit.raw("select convert_from(entry, 'UTF8') as entry from audit.ledger")
    )
    keys = b"".join(row["wrapped"] for row in await audit.raw("select wrapped from audit.data_keys"))
    assert len(personal) > 30  # a marker in every personal field of every event type...
    assert [marker for marker in personal if marker in stored or marker.encode() in keys] == []  # ...none stored
    assert [marker for marker in readable if marker not in stored] == []  # ids, codes, times: stored as they were
    async with transaction(audit.sessions) as session:
        chain = await SqlLedger(sealer=audit.keyring).chain(session, school_id=SCHOOL)
        reader = await audit.keyring.reader(session, school_id=SCHOOL)
    assert verify_chain(chain) == [] and await audit.verified()
    assert [reader.open(dict(entry.event)).document for entry in chain] == documents


async def test_the_view_for_ad_hoc_sql_gives_the_event_each_entrys_bytes_hold(audit: Audit) -> None:
    # The event is stored once, as the entry bytes; `audit.ledger_events` cuts it from them for ad-hoc queries.
    events = [sample_event(cls, token=tokens("view")) for cls in current_classes()]
    events.append(concern_received(kind="online_bullying", platform="Zoë's “group chat” ✓ 😀"))
    for batch in (events[:1], events[1:]):  # sequences of one digit and of two
        await audit.append(batch)
    rows = await audit.raw(
        "select v.event::text as event, l.entry from audit.ledger l join audit.ledger_events v using (position) "
        "order by l.school_sequence"
    )
    assert len(rows) == len(events) >= 10
    assert [json.loads(row["event"]) for row in rows] == [event_of(row["entry"]) for row in rows]
    columns = await audit.raw(
        "select column_name from information_schema.columns where table_schema = 'audit' and table_name = 'ledger'"
    )
    assert "event" not in {row["column_name"] for row in columns}  # the bytes are the only copy


async def test_after_shredding_one_persons_key_verify_passes_and_only_their_fields_read_erased(audit: Audit) -> None:
    case_id, events = a_worked_case()
    await audit.append(events)
    before = await audit.case(case_id)
    assert people(before) == {"learner-7": "Alex Sevenname", "learner-8": "Blake Eightname"}

    shredded = await audit.shred("person", "learner-7")

    assert shredded.payload.key_ids == ["person:learner-7"] and shredded.actor == OFFICER
    assert "Alex" not in shredded.model_dump_json()  # what was shredded, by whom, when: no content
    assert await audit.verified()  # the ledger is untouched: every entry, link and signed head still holds
    after = await audit.case(case_id)
    assert people(after) == {"learner-7": ERASED, "learner-8": "Blake Eightname"}
    linked_7 = payloads(after, "case.person_linked")[0]
    assert (linked_7["name"], linked_7["age"]) == (ERASED, None)
    assert payloads(after, "case.decision_recorded")[0]["reasons"] == "Alex and Blake spoke with the DSL"  # the case's
    assert payloads(after, "concern.received")[0]["reporter"]["name"] == "Pat Parentname"
    outbox = await audit.raw("select event_type, body::text as body from audit.outbox")
    assert [(row["event_type"], "Alex" in row["body"]) for row in outbox] == [("key.shredded", False)]
    assert await audit.shred("person", "learner-7") is None  # nothing left to destroy, nothing recorded twice


async def test_shredding_a_case_or_a_reporter_erases_the_narrative_or_the_reporter(audit: Audit) -> None:
    case_id, events = a_worked_case()
    await audit.append(events)
    await audit.shred("reporter", " PAT@example.org")  # as they gave it, give or take case and spaces
    reporter = payloads(await audit.case(case_id), "concern.received")[0]["reporter"]
    assert (reporter["name"], reporter["contact"]) == (ERASED, ERASED)

    await audit.shred("case", case_id)

    after = await audit.case(case_id)
    [concern] = payloads(after, "concern.received")
    assert (concern["summary"], concern["details"], concern["people"][0]["name"]) == (ERASED, ERASED, ERASED)
    assert payloads(after, "case.decision_recorded")[0]["reasons"] == ERASED
    assert people(after) == {"learner-7": "Alex Sevenname", "learner-8": "Blake Eightname"}  # their own keys
    assert after["case"]["version"] == 5 and await audit.verified()  # its shape and history survive


async def test_a_whole_school_shred_erases_everything_of_that_school_and_its_export_still_proves_itself(
    audit: Audit,
) -> None:
    case_id, events = a_worked_case()
    other_case, other_events = a_worked_case(school_id="oak-academy")
    await audit.append([*events, *other_events])

    shredded = await audit.shred("school")

    assert shredded.payload.keys_destroyed >= 5 and shredded.payload.key_ids == []
    assert await audit.raw("select key_id from audit.data_keys where school_id = $1", SCHOOL) == []
    after = await audit.case(case_id)
    assert set(people(after).values()) == {ERASED}
    assert payloads(after, "concern.received")[0]["reporter"]["contact"] == ERASED
    assert after["case"]["version"] == 5  # the record's shape, times and who-did-what survive the erasure
    assert await audit.verified() and await audit.verified("oak-academy")
    async with transaction(audit.sessions) as session:
        oak = await replay_case(session, keyring=audit.keyring, school_id="oak-academy", case_id=other_case)
    assert oak is not None and people(oak)["learner-7"] == "Alex Sevenname"

    bundle, view = io.StringIO(), io.StringIO()
    async with transaction(audit.sessions) as session:
        summary = await export_bundle(
            session, bundle, school_id=SCHOOL, selection=Selection(), witness=audit.witness,
            public_key=audit.public_key, created_at=NOW,
        )  # fmt: skip
        await write_decrypted_view(
            session, view, keyring=audit.keyring, school_id=SCHOOL, selection=Selection(), bundle="b.jsonl",
            through=summary.tree_size,
        )  # fmt: skip
    report = verify_bundle(bundle.getvalue().splitlines(), public_key=audit.public_key)
    assert report.ok and report.entries == len(events)
    header, *opened = [json.loads(line) for line in view.getvalue().splitlines()]
    assert "NOT covered by the bundle's hashes" in header["not_proved"]
    erased = [line["event"]["type"] for line in opened if line["erased"] and not line["tampered"]]
    assert erased == ["concern.received", "case.person_linked", "case.person_linked", "case.decision_recorded"]

    await audit.append([concern_received(school_id=SCHOOL, summary="A new concern after the shred")])
    async with transaction(audit.sessions) as session:
        chain = await SqlLedger(sealer=audit.keyring).chain(session, school_id=SCHOOL)
        newest = (await audit.keyring.reader(session, school_id=SCHOOL)).open(dict(chain[-1].event))
    assert newest.document["payload"]["summary"] == "A new concern after the shred"  # under a new school key


async def test_the_decrypted_view_opens_what_the_bundle_holds_sealed(audit: Audit) -> None:
    case_id, events = a_worked_case()
    await audit.append(events)
    bundle, view = io.StringIO(), io.StringIO()
    async with transaction(audit.sessions) as session:
        summary = await export_bundle(
            session, bundle, school_id=SCHOOL, selection=Selection(case_id=case_id), witness=audit.witness,
            public_key=audit.public_key, created_at=NOW,
        )  # fmt: skip
        await write_decrypted_view(
            session, view, keyring=audit.keyring, school_id=SCHOOL, selection=Selection(case_id=case_id),
            bundle="b.jsonl", through=summary.tree_size,
        )  # fmt: skip
    assert "Alex" not in bundle.getvalue() and "Alex Sevenname" in view.getvalue()
    sequences = [json.loads(line)["school_sequence"] for line in view.getvalue().splitlines()[1:]]
    proved = [json.loads(line) for line in bundle.getvalue().splitlines()]
    assert sequences == [line["school_sequence"] for line in proved if line["kind"] == "entry"]


async def test_a_wrong_kek_is_refused_with_a_clear_error_and_nothing_is_sealed_under_it(
    audit: Audit, tmp_path: Path
) -> None:
    case_id, events = a_worked_case()
    await audit.append(events)
    stranger = KeyRing(LocalKek(new_key()))
    async with transaction(audit.sessions) as session:
        with pytest.raises(WrongKeyEncryptionKey, match="SAFEGUARD_AUDIT_KEK_PATH") as refused:
            await stranger.check(session)
    assert SCHOOL in str(refused.value) and audit.keyring.kek.key_id in str(refused.value)
    with pytest.raises(WrongKeyEncryptionKey):
        await audit.case(case_id, keyring=stranger)  # a read refuses: it never shows the record as erased
    with pytest.raises(WrongKeyEncryptionKey):
        async with transaction(audit.sessions) as session:
            await SqlLedger(sealer=stranger).append(session, [concern_received(school_id=SCHOOL)])
    assert len(await audit.raw("select 1 from audit.ledger where school_id = $1", SCHOOL)) == len(events)
    assert people(await audit.case(case_id))["learner-7"] == "Alex Sevenname"
    # The audit service given another KEK file refuses to start: it would seal nothing and read nothing.
    service = AuditService(audit.settings, AuditSettings(kek_path=tmp_path / "another-kek"))
    try:
        with pytest.raises(WrongKeyEncryptionKey, match="SAFEGUARD_AUDIT_KEK_PATH"):
            await service.start()
    finally:
        await service.stop()


async def test_a_data_key_row_moved_to_another_subject_reads_as_tampered_not_as_data(audit: Audit) -> None:
    case_id, events = a_worked_case()
    await audit.append(events)
    # An insider with the database (not the KEK) gives learner-8's key row learner-7's name.
    rows = await audit.raw(
        "select key_id, wrapped from audit.data_keys where school_id = $1 and key_id like 'person:%'", SCHOOL
    )
    wrapped = {row["key_id"]: row["wrapped"] for row in rows}
    connection = await asyncpg.connect(asyncpg_dsn(audit.settings.database_url))
    try:
        await connection.execute(
            "update audit.data_keys set wrapped = $1 where school_id = $2 and key_id = 'person:learner-7'",
            wrapped["person:learner-8"],
            SCHOOL,
        )
    finally:
        await connection.close()
    assert people(await audit.case(case_id)) == {"learner-7": "[tampered]", "learner-8": "Blake Eightname"}


async def test_the_shred_command_records_who_shredded_what_in_the_ledger_and_a_wrong_kek_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    _, runtime = create_app(settings)
    case_id, events = a_worked_case()
    configured = AuditSettings()  # the files this test's settings name, as the command line finds them
    signing_key = load_or_create_signing_key(configured.signing_key_path)
    checkpointer = Checkpointer(
        key=signing_key,
        witness=WitnessLog(configured.witness_log_path),
        clock=lambda: datetime.now(UTC),
    )
    async with running(runtime):
        async with transaction(runtime.sessions) as session:
            await sealing_ledger().append(session, events)
            await checkpointer.checkpoint_once(session)
        code, output = await safeguard(
            settings, "audit", "shred", "--school", SCHOOL, "--person", "learner-7", "--basis", "erasure_request"
        )
        assert code == 0, output
        assert "shredded 1 key(s) of st-marks (person learner-7)" in output

        async def recorded() -> list[Any]:
            async with transaction(runtime.sessions) as session:
                rows = await session.execute(sa.select(ledger.c.entry).where(ledger.c.event_type == "key.shredded"))
                return [event_of(row.entry) for row in rows]

        [entry] = await eventually(recorded, until=lambda found: len(found) == 1, what="key.shredded in the ledger")
        code, replayed = await safeguard(
            settings, "audit", "replay", "--school", SCHOOL, "--case", case_id, "--reason", "Subject access request"
        )
        exported, _ = await safeguard(
            settings, "audit", "export", "--school", SCHOOL, "--case", case_id, "--out", str(tmp_path / "b.jsonl"),
            "--decrypted", str(tmp_path / "sar.jsonl"), "--reason", "Subject access request",
        )  # fmt: skip
        again, nothing = await safeguard(settings, "audit", "shred", "--school", SCHOOL, "--person", "learner-7")
        wrong, refused = await safeguard(
            settings, "audit", "replay", "--school", SCHOOL, "--case", case_id, "--reason", "Checking",
            env={"SAFEGUARD_AUDIT_KEK_PATH": str(tmp_path / "another-kek")},
        )  # fmt: skip
    assert entry["actor"] == {"id": "s-bird", "role": "designated_safeguarding_lead"}
    assert entry["payload"] == {
        "scope": "person", "subject": "learner-7", "key_ids": ["person:learner-7"], "keys_destroyed": 1,
        "basis": "erasure_request",
    }  # fmt: skip
    assert code == 0 and people(json.loads(replayed)) == {"learner-7": ERASED, "learner-8": "Blake Eightname"}
    assert (again, nothing.strip()) == (1, "no person key to shred at st-marks: nothing was destroyed")
    bundle, view = (tmp_path / "b.jsonl").read_text(), (tmp_path / "sar.jsonl").read_text()
    assert exported == 0 and verify_bundle(bundle.splitlines(), public_key=signing_key.public_key()).ok
    assert "Blake Eightname" not in bundle and "Blake Eightname" in view and f'"name":"{ERASED}"' in view
    assert (tmp_path / "sar.jsonl").stat().st_mode & 0o777 == 0o600
    assert wrong == 1 and "SAFEGUARD_AUDIT_KEK_PATH" in refused and "Traceback" not in refused
