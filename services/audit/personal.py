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


@cache
def _split(path: str) -> tuple[str, ...]:
    return tuple(path.replace("[]", ".[]").split("."))


class _Field(NamedTuple):
    """A personal field compiled once for its event type: the steps to it, and how its subject is found."""

    declared: Personal
    steps: tuple[str, ...]
    fixed: Path | None  # the whole path when it crosses no list (one lookup per step, no walk)
    head: tuple[str, ...]  # with `fixed`: the steps to the field's parent
    sibling: str  # for a `person` field: the sibling holding the person's id ("" when found elsewhere)


def _compile(fields: tuple[Personal, ...]) -> tuple[_Field, ...]:
    compiled = []
    for declared in fields:
        steps = _split(declared.path)
        fixed = None if "[]" in steps else steps
        sibling = declared.person_id[1:] if declared.person_id.startswith("@") else ""
        compiled.append(_Field(declared, steps, fixed, steps[:-1], sibling))
    return tuple(compiled)


# Each personal event type's fields, compiled once: an event visits only its declared paths.
_PLANS: dict[str, tuple[_Field, ...]] = {event_type: _compile(fields) for event_type, fields in PERSONAL.items()}


def locate(document: Mapping[str, Any]) -> Iterator[Located]:
    """Every personal value present (not None) in an event document, with its subject."""
    plan = _PLANS.get(str(document.get("type")))
    if not plan:
        return
    subjects = _Subjects(document)
    for field in plan:
        if field.fixed is not None:
            parent: Any = document
            for step in field.head:
                parent = parent.get(step) if type(parent) is dict else None
            value = parent.get(field.fixed[-1]) if type(parent) is dict else None
            if value is not None:
                yield Located(field.fixed, *subjects.of(field, parent))
            continue
        for path, parent, value in _walk(document, field.steps):
            if value is not None:
                yield Located(path, *subjects.of(field, parent))


class _Subjects:
    """Whose each field of one document is: the case, the reporter and looked-up person ids worked out once."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self._case: tuple[Subject, str] | None = None
        self._reporter: tuple[Subject, str] | None = None
        self._people: dict[str, Any] = {}

    def of(self, field: _Field, parent: Any) -> tuple[Subject, str]:
        subject = field.declared.subject
        if subject == "record":
            return "record", ""
        if subject == "case":
            return self.case()
        if subject == "person":
            if field.sibling:
                person_id = parent.get(field.sibling) if type(parent) is dict else None
            else:
                person_id = self._person_at(field.declared.person_id)
            return ("person", str(person_id)) if person_id else self.case()
        if self._reporter is None:
            self._reporter = self._reporter_subject()
        return self._reporter

    def case(self) -> tuple[Subject, str]:
        """The case's key (the school record's when the event belongs to no case)."""
        if self._case is None:
            case_id = case_of(self.document)
            case: tuple[Subject, str] = ("case", case_id) if case_id else ("record", "")
            self._case = case
        return self._case

    def _person_at(self, where: str) -> Any:
        if where not in self._people:
            found = _walk(self.document, _split(where))
            self._people[where] = found[0][2] if found else None
        return self._people[where]

    def _reporter_subject(self) -> tuple[Subject, str]:
        reporter = (self.document.get("payload") or {}).get("reporter") or {}
        if reporter.get("person_id"):
            return "person", str(reporter["person_id"])
        if reporter.get("contact"):
            return "reporter", normalised_contact(str(reporter["contact"]))
        return self.case()


def _walk(document: Any, steps: tuple[str, ...]) -> list[tuple[Path, Any, Any]]:
    """(path, containing object, value) for every value the steps reach (documents are plain JSON: dicts, lists)."""
    found: list[tuple[Path, Any, Any]] = [((), None, document)]
    for step in steps:
        if step == "[]":
            found = [
                ((*path, index), node, item)
                for path, _, node in found
                if type(node) is list
                for index, item in enumerate(node)
            ]
        else:
            found = [
                ((*path, step), node, node[step]) for path, _, node in found if type(node) is dict and step in node
            ]
        if not found:
            return []
    return found
