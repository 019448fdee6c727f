"""Sealing personal fields with AES-256-GCM: nothing personal left in the clear, every event still readable once
erased, and a ciphertext bound to its school, entry and field (moved anywhere else it reads as tampered)."""

from __future__ import annotations

import base64
import copy
import os
from pathlib import Path
from typing import Any

import pytest

from services.audit.domain import canonical_json
from services.audit.kek import LocalKek, WrongKeyEncryptionKey, load_or_create_kek
from services.audit.personal import PERSONAL, key_id_for, locate
from services.audit.sealing import ERASED, TAMPERED, new_key, open_document, seal_document, seal_value
from shared.contracts.envelope import parse_event
from tests.support.samples import current_classes, personal_strings, sample_event, strings_in, tokens

PERSONAL_CLASSES = [cls for cls in current_classes() if cls.TYPE in PERSONAL]


def sealed_sample(cls: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, bytes], set[str]]:
    """(plain document, sealed copy, keys by name, the tokens in its personal fields)."""
    plain = sample_event(cls, token=tokens()).model_dump(mode="json")
    found = list(locate(plain))
    keys = {key_id_for(item.subject, item.subject_id): new_key() for item in found}
    personal = personal_strings(plain)
    named = [(item.path, key_id_for(item.subject, item.subject_id)) for item in found]
    sealed = seal_document(copy.deepcopy(plain), named, keys=keys, school_id="st-marks")
    return plain, sealed, keys, personal


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@pytest.mark.parametrize("cls", PERSONAL_CLASSES, ids=lambda cls: cls.TYPE)
def test_no_personal_string_is_left_in_the_clear_and_the_rest_is(cls: Any) -> None:
    plain, sealed, keys, personal = sealed_sample(cls)
    stored = canonical_json(sealed).decode()
    assert personal and not [token for token in personal if token in stored]
    others = set(strings_in(plain)) - personal
    assert others and all(token in stored for token in others)  # ids, codes and times stay readable
    opened = open_document(sealed, key_for=keys.get, school_id="st-marks")
    assert (opened.document, opened.erased, opened.tampered) == (plain, [], [])


@pytest.mark.parametrize("cls", PERSONAL_CLASSES, ids=lambda cls: cls.TYPE)
def test_with_every_key_shredded_the_event_still_parses_and_its_personal_fields_read_erased(cls: Any) -> None:
    plain, sealed, _, personal = sealed_sample(cls)
    opened = open_document(sealed, key_for=lambda _: None, school_id="st-marks")
    assert opened.erased and not opened.tampered
    event = parse_event(opened.document)  # replay and the case view fold it like any other
    text = canonical_json(event.model_dump(mode="json")).decode()
    assert not [token for token in personal if token in text]
    for path in opened.erased:
        value = _at(opened.document, tuple(int(p) if p.isdigit() else p for p in path.split(".")))
        assert value in (ERASED, None, {}, [])
    assert len(opened.erased) == len(list(locate(plain)))


def a_sealed_reason(
    *, event_id: str = "e-1", school_id: str = "st-marks", path: tuple[Any, ...] = ("payload", "reason")
):
    key = new_key()
    envelope = seal_value(
        "Met with Alex's mother", key=key, key_id="case:c-1", school_id=school_id, event_id=event_id, path=path
    )
    return key, envelope


def document_with(envelope: dict[str, Any], *, event_id: str = "e-1", field: str = "reason") -> dict[str, Any]:
    return {"event_id": event_id, "type": "case.reassigned", "payload": {field: envelope}}


def test_a_sealed_value_opens_only_where_it_was_sealed() -> None:
    key, envelope = a_sealed_reason()
    assert "Alex" not in canonical_json(envelope).decode()
    opened = open_document(document_with(dict(envelope)), key_for={"case:c-1": key}.get, school_id="st-marks")
    assert opened.document["payload"]["reason"] == "Met with Alex's mother"
    moved = {
        "to another entry": (document_with(dict(envelope), event_id="e-2"), "st-marks"),
        "to another field": (document_with(dict(envelope), field="summary"), "st-marks"),
        "to another school": (document_with(dict(envelope)), "oak-academy"),
        "under another key's name": (document_with({**envelope, "kid": "case:c-2"}), "st-marks"),
        "as another type": (document_with({**envelope, "type": "obj"}), "st-marks"),
    }
    keys = {"case:c-1": key, "case:c-2": key}
    for what, (document, school) in moved.items():
        result = open_document(document, key_for=keys.get, school_id=school)
        field = next(iter(result.document["payload"]))
        assert result.tampered == [f"payload.{field}"], what
        assert result.document["payload"][field] in (TAMPERED, {}), what  # never the data


def test_a_flipped_bit_or_an_unusable_key_reads_as_tampered_and_a_missing_key_as_erased() -> None:
    key, envelope = a_sealed_reason()
    raw = bytearray(base64.b64decode(envelope["ct"]))
    raw[-1] ^= 1
    flipped = {**envelope, "ct": base64.b64encode(bytes(raw)).decode()}
    assert open_document(document_with(flipped), key_for={"case:c-1": key}.get, school_id="st-marks").tampered
    broken = open_document(document_with(dict(envelope)), key_for=lambda _: b"", school_id="st-marks")
    assert broken.document["payload"]["reason"] == TAMPERED
    gone = open_document(document_with(dict(envelope)), key_for=lambda _: None, school_id="st-marks")
    assert (gone.document["payload"]["reason"], gone.erased) == (ERASED, ["payload.reason"])


async def test_a_school_key_wrapped_by_one_kek_does_not_unwrap_with_another() -> None:
    kek, other = LocalKek(new_key()), LocalKek(new_key())
    school_key = new_key()
    wrapped = await kek.wrap(school_key, context=b"st-marks")
    assert await kek.unwrap(wrapped, context=b"st-marks") == school_key
    assert kek.key_id != other.key_id
    with pytest.raises(WrongKeyEncryptionKey, match="does not unwrap"):
        await other.unwrap(wrapped, context=b"st-marks")
    with pytest.raises(WrongKeyEncryptionKey):
        await kek.unwrap(wrapped, context=b"oak-academy")  # a school's wrapped key moved to another school


def test_the_kek_file_is_made_private_once_and_refused_when_others_can_read_it(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "key-encryption-key"
    first = load_or_create_kek(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_kek(path).key_id == first.key_id
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        load_or_create_kek(path)
