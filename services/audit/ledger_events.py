"""Events read back from the ledger's entry bytes for replay: only the types asked for, parsed straight from bytes.

The entry bytes are the record verify proves (previous hash, sequence, the event's canonical JSON). An event's
canonical JSON has its keys sorted, so it ends `,"type":"<type>","version":<n>}`: its type is read from that
tail without decoding the rest, and an entry of a type nobody asked for is skipped unparsed. The tail is trusted
only when it has exactly that shape (the closing brace right after the version closes the top-level object, and
JSON strings cannot hold a bare quote); any other shape is decoded in full. The rest is pydantic's own JSON
parser on the bytes (`model_validate_json`, the event's class validating it as on the wire), unless the event
has sealed fields to open first or its version is upcast (then `parse_event` on the opened document).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import split_entry
from services.audit.keyring import KeyRing, SchoolKeys
from services.audit.sealing import ALGORITHM
from services.audit.store import driver_connection, ledger
from shared.contracts.envelope import Event, parse_event, registry

READ_CHUNK = 2_048
_TAIL = re.compile(rb'([A-Za-z0-9_.\-]+)","version":([0-9]+)}')
_SEALED = b'"sealed":"%s"' % ALGORITHM.encode()


def type_and_version(canonical: bytes) -> tuple[str, int, bool]:
    """The event's type and version, from the tail of its canonical JSON, and whether the tail said so (when it has
    an unusual shape the document is decoded in full)."""
    found = _TAIL.fullmatch(canonical[canonical.rfind(b',"type":"') + 9 :])
    if found is not None:
        return found[1].decode(), int(found[2]), True
    document = json.loads(canonical)
    return str(document.get("type")), int(document.get("version") or 0), False


Validate = Callable[[bytes], Any]


def _skip(canonical: bytes) -> None:
    """What reads an event of a type nobody asked for: nothing."""


class EventReader:
    """Parses the canonical bytes of ledger events of the wanted types, opening sealed fields with the school's keys."""

    def __init__(self, keys: SchoolKeys, *, wanted: Collection[str]) -> None:
        self.keys = keys
        self.wanted = frozenset(wanted)
        found = registry()
        # What parses each wanted (type, version) as it stands: its class's validator, or the registry (upcast).
        self._parsers: dict[tuple[str, int], Validate] = {
            key: self._in_full if found.superseded(*key) else cls.__pydantic_validator__.validate_json
            for key, cls in found.classes().items()
            if key[0] in self.wanted
        }
        self._by_tail: dict[bytes, Validate] = {}  # a ledger has a few dozen tails: most events cost one lookup

    def read(self, canonical: bytes) -> Event[Any] | None:
        """The event, or None when it is not of a wanted type."""
        tail = canonical[canonical.rfind(b',"type":"') + 9 :]
        parse = self._by_tail.get(tail)
        if parse is None:
            event_type, version, by_tail = type_and_version(canonical)
            parse = self._parsers.get((event_type, version), self._in_full if event_type in self.wanted else _skip)
            if by_tail:
                self._by_tail[tail] = parse
        if _SEALED in canonical and parse is not _skip:
            return self._in_full(canonical)
        event: Event[Any] | None = parse(canonical)  # the class's own validation, as model_validate_json does
        return event

    def _in_full(self, canonical: bytes) -> Event[Any]:
        """Sealed fields opened, then the registry's parse (upcasting an old version)."""
        return parse_event(self.keys.open(json.loads(canonical)).document)


def _parsed(rows: list[Any], reader: EventReader, as_of: datetime | None) -> Iterator[tuple[int, Event[Any]]]:
    # Lazily: each event is parsed as the caller takes it and can be dropped once folded. Parsing a whole chunk
    # first keeps thousands of young objects alive at once, and the garbage collector's passes over them made
    # replay two to three times slower (measured).
    read = reader.read
    for sequence, entry in rows:
        parts = entry.split(b"\n", 2)
        event = read(parts[2] if len(parts) == 3 else split_entry(entry)[2])  # the latter raises: not an entry
        if event is not None and (as_of is None or event.occurred_at <= as_of):
            yield sequence, event


async def stream_events(
    session: AsyncSession, *, keyring: KeyRing, school_id: str, wanted: Collection[str], as_of: datetime | None = None
) -> AsyncIterator[Iterator[tuple[int, Event[Any]]]]:
    """(sequence, event) of the wanted types that occurred by `as_of`, in chain order, read from the entry bytes,
    a chunk at a time (each chunk an iterator that parses as it goes: take it before the next chunk).

    Selected by school and chain order alone (no other column): the bytes decide an event's type and time.
    """
    reader = EventReader(await keyring.reader(session, school_id=school_id), wanted=wanted)
    connection = await driver_connection(session)
    cursor = await connection.cursor(
        f"select school_sequence, entry from {ledger.fullname} where school_id = $1 order by school_sequence",
        school_id,
    )
    pending = asyncio.ensure_future(cursor.fetch(READ_CHUNK))
    try:
        while rows := await pending:
            pending = asyncio.ensure_future(cursor.fetch(READ_CHUNK))
            await asyncio.sleep(0)  # the next chunk is on its way while this one is parsed
            yield _parsed(rows, reader, as_of)
    finally:
        await asyncio.gather(pending, return_exceptions=True)  # never leave a fetch running on the connection
