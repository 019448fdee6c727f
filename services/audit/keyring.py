"""The data keys that seal the ledger's personal fields, kept wrapped in `audit.data_keys`.

Two levels, so that both erasures are a single deletion:

- each school has a **school key**, wrapped by the key-encryption key (KEK, services/audit/kek.py);
- each subject (a person, a reporter, a case, the school record: services/audit/personal.py) has a **data key**,
  wrapped by its school's key. Fields are sealed with data keys only.

Destroying a subject's row erases that subject's fields throughout the school's ledger; destroying the school's
row makes every data key of the school unopenable at once (shredding a school deletes all its rows). Keys are read
fresh in each transaction (never cached across them), so a key shredded by another process is never used again.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import asyncpg
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.kek import KeyEncryptionKey, WrongKeyEncryptionKey
from services.audit.personal import Located, key_id_for, locate
from services.audit.sealing import Opened, aead_open, aead_seal, new_key, open_document, seal_document
from services.audit.store import KeyRow, SealingPlan, data_keys, driver_connection, transaction_driver

SCHOOL_KEY = "school"
WRAPPED_BY_SCHOOL = "school"


_ALL_KEYS = f"select key_id, wrapped, wrapped_by from {data_keys.fullname} where school_id = $1"
_NAMED_KEYS = f"{_ALL_KEYS} and key_id = any($2::text[])"
_STORE_KEYS = (
    f"insert into {data_keys.fullname} (school_id, key_id, wrapped, wrapped_by) "
    "select $1, key_id, wrapped, $4 from unnest($2::text[], $3::bytea[]) as made(key_id, wrapped)"
)
# Keys not yet looked up in this transaction ($5), each with a fresh key made for it in case it is missing: the
# stored rows among them are read, and the fresh ones stored where there is none, in one round trip. The select
# sees the rows committed before the statement (under the school's lock: all of them); a fresh key that met one
# is not stored (`on conflict do nothing`) and is dropped. Each id comes back once: stored before (its row), or
# made now (no bytes).
_FIND_OR_STORE_KEYS = (
    f"with fresh as ({_STORE_KEYS} on conflict (school_id, key_id) do nothing returning key_id) "
    f"select key_id, wrapped from {data_keys.fullname} where school_id = $1 and key_id = any($5::text[]) "
    "union all select key_id, null from fresh"
)


class DataKeyAltered(Exception):
    """A data key's row does not unwrap with its school's key: nothing new is sealed under it."""


def _school_context(school_id: str) -> bytes:
    return f"safeguard audit school key\n{school_id}".encode()


def _data_context(school_id: str, key_id: str) -> bytes:
    return f"safeguard audit data key\n{school_id}\n{key_id}".encode()


class SchoolKeys:
    """One school's keys as read in this transaction: data keys unwrapped on first use."""

    def __init__(
        self,
        school_id: str,
        *,
        school_key: bytes | None,
        wrapped: dict[str, bytes],
        looked_up: Iterable[str] = (),
        driver: asyncpg.Connection | None = None,
    ) -> None:
        self.school_id = school_id
        self._driver = driver  # the transaction's connection they were read on, to read and store more on
        self._looked_up = set(looked_up)  # data keys already read in this transaction (found or not)
        self._school_key = school_key
        self._unwrapper = AESGCM(school_key) if school_key is not None else None
        self._wrapped = wrapped
        self._opened: dict[str, bytes] = {}
        self._ciphers: dict[str, AESGCM | bytes | None] = {}
        self._pseudonym_key: bytes | None = None
        self._pseudonyms: dict[str, str] = {}  # for this transaction's batch only, like the keys

    def key(self, key_id: str) -> bytes | None:
        """The data key; None when shredded (or the school's key is), b"" when its row does not unwrap."""
        if key_id in self._opened:
            return self._opened[key_id]
        wrapped = self._wrapped.get(key_id)
        if wrapped is None or self._unwrapper is None:
            return None
        try:
            key = aead_open(self._unwrapper, wrapped, associated=_data_context(self.school_id, key_id))
        except (InvalidTag, ValueError):
            key = b""  # an altered or moved key row: its fields read as tampered
        self._opened[key_id] = key
        return key

    def cipher(self, key_id: str) -> AESGCM | bytes | None:
        """The data key ready to open with (made once per key); None when shredded, b"" when unusable."""
        if key_id not in self._ciphers:
            key = self.key(key_id)
            self._ciphers[key_id] = AESGCM(key) if key else key
        return self._ciphers[key_id]

    def pseudonym(self, contact: str) -> str:
        """A reporter's name for their key: a hash of their contact keyed by the school's key (no dictionary)."""
        if contact not in self._pseudonyms:  # a concern names its reporter's key once per field
            if self._pseudonym_key is None:
                assert self._school_key is not None
                label = b"safeguard audit reporter pseudonyms"
                self._pseudonym_key = hmac.new(self._school_key, label, hashlib.sha256).digest()
            digest = hmac.new(self._pseudonym_key, contact.encode(), hashlib.sha256).hexdigest()[:32]
            self._pseudonyms[contact] = digest
        return self._pseudonyms[contact]

    def key_id(self, located: Located) -> str:
        subject_id = self.pseudonym(located.subject_id) if located.subject == "reporter" else located.subject_id
        return key_id_for(located.subject, subject_id)

    def open(self, document: dict[str, Any]) -> Opened:
        """The document with its sealed fields opened (in place), erased or marked tampered."""
        return open_document(document, key_for=self.cipher, school_id=self.school_id)

    async def _connection(self, session: AsyncSession) -> asyncpg.Connection:
        if self._driver is None:
            self._driver = await driver_connection(session)
        return self._driver

    async def ensure(self, session: AsyncSession, key_ids: Iterable[str]) -> dict[str, bytes]:
        """Each named data key: read from the table, or made (and stored wrapped) when the school has none yet."""
        assert self._unwrapper is not None
        wanted = set(key_ids)
        unknown = sorted(wanted - self._wrapped.keys() - self._looked_up)
        made = {key_id: new_key() for key_id in sorted(wanted - self._wrapped.keys())}
        if made:
            wrapped = {
                key_id: aead_seal(self._unwrapper, key, associated=_data_context(self.school_id, key_id))
                for key_id, key in made.items()
            }
            # under the school's lock: nobody races us
            stored = (self.school_id, list(wrapped), list(wrapped.values()), WRAPPED_BY_SCHOOL)
            connection = await self._connection(session)
            if unknown:  # read and store in one statement; a key found stored is used, the fresh one dropped
                rows = await connection.fetch(_FIND_OR_STORE_KEYS, *stored, unknown)
                found = {row["key_id"]: row["wrapped"] for row in rows}
                if len(rows) != len(found) or not set(unknown) <= found.keys() or not made.keys() <= found.keys():
                    raise DataKeyAltered(f"data keys of {self.school_id} changed while they were read")
                for key_id, stored_row in found.items():
                    if stored_row is not None:
                        self._wrapped[key_id] = bytes(stored_row)
                        del made[key_id], wrapped[key_id]
                self._looked_up.update(unknown)
            else:
                await connection.execute(_STORE_KEYS, *stored)
            self._opened.update(made)
            self._wrapped.update(wrapped)
        found = {key_id: self.key(key_id) for key_id in wanted}
        broken = sorted(key_id for key_id, key in found.items() if not key)
        if broken:
            raise DataKeyAltered(f"data keys {broken} of {self.school_id} do not unwrap: their rows were altered")
        return {key_id: key for key_id, key in found.items() if key}


class KeyRing:
    """Seals documents before they are chained and opens them when read, with keys from `audit.data_keys`."""

    def __init__(self, kek: KeyEncryptionKey) -> None:
        self.kek = kek

    def plan(self, *, school_id: str, documents: list[dict[str, Any]]) -> SealingPlan:
        """What sealing these documents needs: their personal fields, and the keys to read first (`key_ids`: the
        school's key and the data keys named without it; none when nothing is to be sealed)."""
        found = [list(locate(document)) for document in documents]
        if not any(found):
            return SealingPlan(school_id, documents, found, [])  # no key is made until there is something to seal
        # Read with the school's key: the data keys named without it (a reporter's name is keyed by it).
        named_plainly = {
            key_id_for(item.subject, item.subject_id) for items in found for item in items if item.subject != "reporter"
        }
        return SealingPlan(school_id, documents, found, [SCHOOL_KEY, *sorted(named_plainly)])

    async def seal(self, session: AsyncSession, plan: SealingPlan, *, keys: Iterable[KeyRow]) -> None:
        """Seal every personal field of the plan's documents (in place), making keys for new subjects.

        `keys` are the rows of `plan.key_ids` the school has, read in this transaction under the school's lock
        (the ledger reads them in its statement reading the chain's head)."""
        if not plan.key_ids:
            return
        driver = await driver_connection(session)
        school_id = plan.school_id
        school = await self._school_keys(driver, school_id, list(keys), looked_up=plan.key_ids[1:], create=True)
        assert school is not None
        named = [[(item.path, school.key_id(item)) for item in items] for items in plan.found]
        opened = await school.ensure(session, {key_id for items in named for _, key_id in items})
        ciphers = {key_id: AESGCM(key) for key_id, key in opened.items()}  # one per data key for the whole batch
        for document, items in zip(plan.documents, named, strict=True):
            seal_document(document, items, keys=ciphers, school_id=school_id)

    async def reader(self, session: AsyncSession, *, school_id: str) -> SchoolKeys:
        """Every key of the school, to open its documents (none after a whole-school shred: all reads erased)."""
        keys = await self.school(session, school_id=school_id, key_ids=None, create=False)
        return keys or SchoolKeys(school_id, school_key=None, wrapped={})

    async def school(
        self, session: AsyncSession, *, school_id: str, key_ids: Iterable[str] | None, create: bool
    ) -> SchoolKeys | None:
        """The school's keys (all, or those named); its school key made first when `create` and it has none."""
        driver = await transaction_driver(session)  # readers go on to read the ledger in the same transaction
        if key_ids is None:
            found = await driver.fetch(_ALL_KEYS, school_id)
            looked_up: list[str] = []
        else:
            looked_up = list(key_ids)
            found = await driver.fetch(_NAMED_KEYS, school_id, [SCHOOL_KEY, *looked_up])
        rows = [KeyRow(row["key_id"], row["wrapped"], row["wrapped_by"]) for row in found]
        return await self._school_keys(driver, school_id, rows, looked_up=looked_up, create=create)

    async def _school_keys(
        self, driver: asyncpg.Connection, school_id: str, rows: list[KeyRow], *, looked_up: list[str], create: bool
    ) -> SchoolKeys | None:
        """The school's keys from its rows as read; its school key made (and stored) first when `create` and the
        rows have none."""
        wrapped = {row.key_id: bytes(row.wrapped) for row in rows if row.key_id != SCHOOL_KEY}
        school_row = next((row for row in rows if row.key_id == SCHOOL_KEY), None)
        if school_row is not None:
            if school_row.wrapped_by != self.kek.key_id:
                raise self._wrong(school_id, wrapped_by=school_row.wrapped_by)
            school_key = await self.kek.unwrap(bytes(school_row.wrapped), context=_school_context(school_id))
            return SchoolKeys(school_id, school_key=school_key, wrapped=wrapped, looked_up=looked_up, driver=driver)
        if not create:
            return None
        school_key = new_key()
        sealed = await self.kek.wrap(school_key, context=_school_context(school_id))
        await driver.execute(_STORE_KEYS, school_id, [SCHOOL_KEY], [sealed], self.kek.key_id)
        return SchoolKeys(school_id, school_key=school_key, wrapped=wrapped, looked_up=looked_up, driver=driver)

    async def check(self, session: AsyncSession) -> None:
        """Refuse a KEK that did not wrap the school keys already stored: a clear error, never silent erasure."""
        rows = await session.execute(
            sa.select(data_keys.c.school_id, data_keys.c.wrapped, data_keys.c.wrapped_by).where(
                data_keys.c.key_id == SCHOOL_KEY
            )
        )
        for row in rows:
            if row.wrapped_by != self.kek.key_id:
                raise self._wrong(row.school_id, wrapped_by=row.wrapped_by)
            await self.kek.unwrap(bytes(row.wrapped), context=_school_context(row.school_id))

    def _wrong(self, school_id: str, *, wrapped_by: str) -> WrongKeyEncryptionKey:
        return WrongKeyEncryptionKey(
            f"the keys of {school_id} were wrapped by key-encryption key {wrapped_by}, but audit holds "
            f"{self.kek.key_id}: point SAFEGUARD_AUDIT_KEK_PATH at the right file (nothing was read or sealed)"
        )

    async def shred(self, session: AsyncSession, *, school_id: str, key_ids: list[str] | None) -> list[str]:
        """Destroy the named data keys (all the school's, the school key with them, when None); the ones destroyed."""
        statement = sa.delete(data_keys).where(data_keys.c.school_id == school_id)
        if key_ids is not None:
            statement = statement.where(data_keys.c.key_id.in_(key_ids))
        deleted = await session.execute(statement.returning(data_keys.c.key_id))
        return sorted(deleted.scalars())
