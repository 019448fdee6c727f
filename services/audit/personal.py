"""Which fields of each event are personal, declared once as data: names, contacts and narrative, and whose.

Each personal field is sealed (services/audit/sealing.py) under the data key of its **subject**:

- `person`   — someone the policy or the case knows by a person id (staff told about a case, a child linked to
  it, a named adult in a concern): key `person:<id>`, found at `person_id` (a path; `@x` is the field's sibling
  `x`). Without an id the field falls back to the case's key.
- `reporter` — whoever raised a concern: their person id's key when they gave one, else `reporter:<pseudonym>`
  (a keyed hash of their contact, never the contact itself), else the case's key.
- `case`     — the concern's narrative and the children named in it without an id: key `case:<case id>`; an event
  that belongs to no case falls back to the school record's key.
- `record`   — the school's own record (its adopted policy, which names staff and their contacts): key `record`.

Every event type is listed once: in `PERSONAL` with its fields, or in `NO_PERSONAL_DATA`; a test keeps the two
complete as new types are added. Paths are dotted; `[]` stands for every item of a list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, NamedTuple

from services.routing.domain import derived_id

Subject = Literal["person", "reporter", "case", "record"]
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Personal:
    """A personal field of an event: where it is and whose it is."""

    path: str
    subject: Subject
    person_id: str = ""  # for `person`: where the person's id is ("@person_id" is the field's sibling)


def _people(prefix: str, *fields: str) -> tuple[Personal, ...]:
    return tuple(Personal(f"{prefix}.{name}", "person", "@person_id") for name in fields)


def _case(*paths: str) -> tuple[Personal, ...]:
    return tuple(Personal(path, "case") for path in paths)


_CONCERN = (
    *(Personal(f"payload.reporter.{name}", "reporter") for name in ("name", "contact", "age")),
    *_people("payload.people[]", "name", "age", "year_group"),
    *_case("payload.summary", "payload.details", "payload.answers"),
)

PERSONAL: Mapping[str, tuple[Personal, ...]] = {
    "concern.received": _CONCERN,
    "case.triaged": (
        *_people("payload.recipients[]", "name"),
        *_people("payload.possible_subjects[]", "name"),
        *_case("payload.possible_subjects[].why", "payload.subject_notes[]"),
    ),
    "case.escalated": _people("payload.recipients[]", "name"),
    "case.unacknowledged": _people("payload.recipients[]", "name"),
    "case.reassigned": _case("payload.reason"),
    "case.action_recorded": _case("payload.details"),
    "case.parent_notification_decided": _case("payload.reason"),
    # The parent's name, who they are to the child and how to reach them: sealed under their own key.
    "case.parents_informed": (
        *(Personal(f"payload.{name}", "person", "payload.parent_id") for name in ("name", "relationship", "address")),
        *_case("payload.basis"),
    ),
    "case.person_linked": _people("payload", "name", "age", "year_group"),
    "case.decision_recorded": _case("payload.decision", "payload.reasons", "payload.advice"),
    "case.reclassified": _case("payload.reason"),
    "case.outcome_recorded": _case("payload.summary"),
    "case.investigation_completed": _case("payload.summary"),
    "case.debrief_requested": _case("payload.focus"),
    "case.debrief_recorded": _case(
        "payload.lessons_learnt",
        "payload.policy_changes[].change",
        "payload.curriculum_changes[]",
        "payload.actions[].description",
    ),
    "case.debrief_action_completed": _case("payload.note"),
    "case.closed": _case("payload.summary"),
    "case.reopened": _case("payload.reason"),
    "notification.requested": (
        Personal("payload.recipient.name", "person", "payload.recipient.person_id"),
        Personal("payload.address", "person", "payload.recipient.person_id"),
    ),
    # A provider's refusal may quote the address it could not reach.
    "notification.failed": (Personal("payload.reason", "person", "payload.recipient_person_id"),),
    "policy.adopted": (Personal("payload.document", "record"),),
    "policy.review_due": _people("payload.recipients[]", "name"),
    "record.viewed": _case("payload.reason"),
    # A console username is often the person's email address.
    "account.changed": (Personal("payload.username", "person", "payload.person_id"),),
}

# Ids, codes, policy wording and times only (person ids are pseudonymous and stay readable, so keys can be found).
NO_PERSONAL_DATA: frozenset[str] = frozenset(
    {
        "case.opened",
        "case.acknowledged",
        "case.command_refused",
        "notification.sent",
        "notification.acknowledged",
        "deadline.set",
        "deadline.reached",
        "ops.dead_lettered",
        "intake.quarantined",
        "ledger.checkpointed",
        "key.shredded",
        "debrief.action_due",
        "notification.delivered",
    }
)


def case_of(document: Mapping[str, Any]) -> str:
    """The case whose key an event's narrative is sealed under ("" when it has none)."""
    payload = document.get("payload") or {}
    if document.get("type") == "concern.received":
        # The case routing opens for this concern has an id derived from the concern's event id.
        return derived_id("case", document["event_id"])
    if document.get("type") == "record.viewed":
        return str(payload.get("record_id") or "") if payload.get("record_kind") == "case" else ""
    return str(payload.get("case_id") or "")


def key_id_for(subject: Subject, subject_id: str) -> str:
    """The data key's name in audit.data_keys (the reporter's subject id is already a pseudonym)."""
    return "record" if subject == "record" else f"{subject}:{subject_id}"


def normalised_contact(contact: str) -> str:
    """One form per contact, so the same reporter always finds the same key."""
    return "".join(contact.split()).casefold()


class Located(NamedTuple):
    """A personal value found in a document: its path, and whose it is (a reporter by their contact)."""

    path: Path
    subject: Subject
    subject_id: str


def locate(document: Mapping[str, Any]) -> Iterator[Located]:
    """Every personal value present (not None) in an event document, with its subject."""
    fields = PERSONAL.get(str(document.get("type")))
    if not fields:
        return
    case_id = case_of(document)
    case: tuple[Subject, str] = ("case", case_id) if case_id else ("record", "")
    for field in fields:
        for path, parent, value in _walk(document, _split(field.path)):
            if value is not None:
                yield Located(path, *_subject(field, document, parent, case=case))


def _subject(
    field: Personal, document: Mapping[str, Any], parent: Any, *, case: tuple[Subject, str]
) -> tuple[Subject, str]:
    if field.subject == "record":
        return "record", ""
    if field.subject == "case":
        return case
    if field.subject == "person":
        person_id = _find(document, parent, field.person_id)
        return ("person", str(person_id)) if person_id else case
    reporter = (document.get("payload") or {}).get("reporter") or {}
    if reporter.get("person_id"):
        return "person", str(reporter["person_id"])
    if reporter.get("contact"):
        return "reporter", normalised_contact(str(reporter["contact"]))
    return case


def _find(document: Mapping[str, Any], parent: Any, where: str) -> Any:
    if where.startswith("@"):
        return parent.get(where[1:]) if type(parent) is dict else None
    found = [value for _, _, value in _walk(document, _split(where))]
    return found[0] if found else None


@cache
def _split(path: str) -> tuple[str, ...]:
    return tuple(path.replace("[]", ".[]").split("."))


def _walk(document: Any, steps: tuple[str, ...]) -> list[tuple[Path, Any, Any]]:
    """(path, containing object, value) for every value the steps reach (documents are plain JSON: dicts, lists)."""
    found: list[tuple[Path, Any, Any]] = [((), None, document)]
    for step in steps:
        reached: list[tuple[Path, Any, Any]] = []
        for path, _, node in found:
            if step == "[]":
                if type(node) is list:
                    reached.extend(((*path, index), node, item) for index, item in enumerate(node))
            elif type(node) is dict and step in node:
                reached.append(((*path, step), node, node[step]))
        if not reached:
            return []
        found = reached
    return found
