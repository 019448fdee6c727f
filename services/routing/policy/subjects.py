"""Who a concern is about, failing safe: anyone who plausibly is its subject is left out, never told.

A subject named exactly (by id, by name, by an alias the policy lists) is a subject. A subject named loosely
("Mr Bird", "Bird", "Steve Bird"), by role ("the DSL"), by an id the policy does not know, or not named at all
while the concern's text names someone, makes everyone they could be a *possible* subject: not told either,
and the decision says who and why, so the DSL or the headteacher confirms. A false exclusion is
recoverable; telling the person the concern is about is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from services.routing.policy.model import Person, Policy, SchoolRole
from shared.contracts.concern import ADULTS_WORKING_WITH_CHILDREN, ConcernReport, PersonRole

TITLES = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "rev", "revd", "reverend"}
    | {"father", "sister", "master", "lady", "lord"}
)
_FILLERS = frozenset({"the", "of", "and"})
# Roles a name or a sentence may give instead of a name; deputies first, so "deputy DSL" is not read as "DSL".
_DEPUTY_WORDS = r"\b(deputy (designated )?safeguarding lead|deputy dsl|ddsl)\b"
_ROLE_WORDS: tuple[tuple[re.Pattern[str], SchoolRole], ...] = (
    (re.compile(_DEPUTY_WORDS), SchoolRole.deputy_designated_safeguarding_lead),
    (re.compile(r"\b(designated safeguarding lead|safeguarding lead|dsl)\b"), SchoolRole.designated_safeguarding_lead),
    (re.compile(r"\b(head ?teacher|head of school|principal)\b"), SchoolRole.headteacher),
    (re.compile(r"\b(named|safeguarding) governor\b|\bchair of governors\b"), SchoolRole.named_governor),
    (re.compile(r"\b(lado|local authority designated officer)\b"), SchoolRole.local_authority_designated_officer),
)  # fmt: skip
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_CACHE_LIMIT = 10_000


class PossibleSubject(NamedTuple):
    """Someone who plausibly is the concern's subject, and why the engine thinks so."""

    person_id: str
    why: str


@dataclass(frozen=True)
class SubjectFinding:
    """Who the concern is about: certain subjects, possible subjects, and what could not be resolved."""

    subjects: frozenset[str] = frozenset()
    possible: tuple[PossibleSubject, ...] = ()
    unresolved: tuple[str, ...] = ()
    excluded: frozenset[str] = field(default=frozenset())
    to_confirm: bool = False


def fold(text: str) -> str:
    """Text folded for matching names: lower case, punctuation as spaces, single spaces."""
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


def roles_named(folded: str) -> tuple[frozenset[SchoolRole], str]:
    """The roles a folded text names ("the DSL"), and the text with those words taken out."""
    found: set[SchoolRole] = set()
    for pattern, role in _ROLE_WORDS:
        if pattern.search(folded):
            found.add(role)
            folded = pattern.sub(" ", folded)
    return frozenset(found), folded


def name_tokens(text: str) -> tuple[str, ...]:
    """The words of a personal name, without titles, role words or fillers: "Mr. S Bird (DSL)" -> (s, bird).

    A name that is only a role ("The Headteacher") keeps its role words: they are all there is to match.
    """
    folded = fold(text)
    _, rest = roles_named(folded)
    words = tuple(word for word in rest.split() if word not in TITLES and word not in _FILLERS)
    return words or tuple(word for word in folded.split() if word not in TITLES and word not in _FILLERS)


class _Known(NamedTuple):
    person: Person
    names: tuple[tuple[str, ...], ...]  # the name first, then each alias
    compact_id: str


def _index(policy: Policy) -> tuple[_Known, ...]:
    known = policy.engine_cache.get("subject_index")
    if known is None:
        known = policy.engine_cache["subject_index"] = tuple(
            _Known(
                person,
                tuple(t for t in (name_tokens(n) for n in (person.name, *person.aliases)) if t),
                re.sub(r"[^a-z0-9]", "", person.id),
            )
            for person in policy.people
        )
    return known  # type: ignore[no-any-return]


def _near(first: str, second: str) -> bool:
    """Equal, or (for words of five letters or more) one typing slip apart."""
    if first == second:
        return True
    if min(len(first), len(second)) < 5 or abs(len(first) - len(second)) > 1:
        return False
    if len(first) == len(second):
        differ = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
        swapped = len(differ) == 2 and differ[1] == differ[0] + 1 and first[differ[0]] == second[differ[1]]
        return len(differ) == 1 or (swapped and first[differ[1]] == second[differ[0]])
    shorter, longer = sorted((first, second), key=len)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def _given_fits(word: str, given: tuple[str, ...]) -> bool:
    """A given name or initial in a mention is compatible with the person's given names or initials."""
    return any(word == g or (word[0] == g[0] and (len(word) == 1 or len(g) == 1)) for g in given)


def _fits(mention: tuple[str, ...], name: tuple[str, ...]) -> bool:
    """Whether a mention could be this name: its surname, with nothing before it contradicting the given names.

    Words after the surname are ignored: they describe ("Bird, year 3 teacher"), they do not contradict.
    """
    *given, surname = name
    if "".join(mention) == "".join(name):
        return True  # written run together: "SBird"
    for at, word in enumerate(mention):
        if _near(word, surname):
            before = mention[:at]
            return all(_given_fits(w, tuple(given)) for w in before) if given else not before
    return False


def match_name(text: str, *, policy: Policy) -> tuple[frozenset[str], tuple[PossibleSubject, ...]]:
    """People a written name is (exact name or alias) and people it could be (loose name, or a role it gives)."""
    # The same few names recur across concerns, and the answer depends on nothing else: memoised per policy.
    key = ("match_name", text)
    known = policy.engine_cache.get(key)
    if known is None:
        known = _match_name(text, policy=policy)
        if len(policy.engine_cache) < _CACHE_LIMIT:
            policy.engine_cache[key] = known
    return known  # type: ignore[no-any-return]


def _match_name(text: str, *, policy: Policy) -> tuple[frozenset[str], tuple[PossibleSubject, ...]]:
    roles, _ = roles_named(fold(text))
    mention = name_tokens(text)
    exact: set[str] = set()
    loose: list[PossibleSubject] = []
    for known in _index(policy):
        if mention in known.names:
            exact.add(known.person.id)
        elif any(_fits(mention, name) for name in known.names):
            loose.append(PossibleSubject(known.person.id, f"the name {text.strip()!r} could be {known.person.name}"))
        elif not roles.isdisjoint(known.person.roles):
            loose.append(PossibleSubject(known.person.id, f"{text.strip()!r} names a role {known.person.name} holds"))
    return frozenset(exact), tuple(p for p in loose if p.person_id not in exact)


def match_unknown_id(person_id: str, *, policy: Policy) -> tuple[PossibleSubject, ...]:
    """People an id the policy does not know could stand for ("sbird" for s-bird or for Mr S Bird)."""
    compact = re.sub(r"[^a-z0-9]", "", person_id.casefold())
    why = f"the unknown person_id {person_id!r} looks like"
    return tuple(
        PossibleSubject(known.person.id, f"{why} {known.person.name}")
        for known in _index(policy)
        if compact
        and (
            _near(compact, known.compact_id)
            or any(_near(compact, "".join(n)) or _near(compact, n[-1]) for n in known.names)
            or any(len(n) > 1 and compact == n[0][0] + n[-1] for n in known.names)
        )
    )


def mentioned_in(text: str, *, policy: Policy) -> tuple[PossibleSubject, ...]:
    """People of the school a free text names: by title or initial with a surname, by full name or an alias."""
    # Roles are not read from free text: "I told the DSL" is how most reports end, and says nothing of whom
    # the concern is about.
    words = fold(text).split()
    index, by_surname = _index(policy), _surname_index(policy)
    # Only people whose surname (or something one slip from it) occurs are checked in full: texts are long.
    candidates = sorted({at for word in words for key in _keys(word) for at in by_surname.get(key, ())})
    return tuple(
        PossibleSubject(known.person.id, f"the concern's text names {known.person.name}")
        for known in (index[at] for at in candidates)
        if any(_names_in(words, name) for name in known.names)
    )


def _keys(word: str) -> tuple[str, ...]:
    """The word and, when long enough for a slip to count, the word with each letter left out."""
    if len(word) < 5:
        return (word,)
    return (word, *(word[:i] + word[i + 1 :] for i in range(len(word))))


def _surname_index(policy: Policy) -> dict[str, tuple[int, ...]]:
    found = policy.engine_cache.get("surname_index")
    if found is None:
        keys: dict[str, set[int]] = {}
        for at, known in enumerate(_index(policy)):
            for name in known.names:
                for key in _keys(name[-1]):
                    keys.setdefault(key, set()).add(at)
        found = policy.engine_cache["surname_index"] = {key: tuple(ats) for key, ats in keys.items()}
    return found  # type: ignore[no-any-return]


def _names_in(words: list[str], name: tuple[str, ...]) -> bool:
    if len(name) > 1 and " ".join(name) in " ".join(words):
        return True
    *given, surname = name
    for at, word in enumerate(words):
        if at and _near(word, surname):
            before = words[at - 1]
            # A surname alone is too common a word ("bird", "hill"); with a title or initial it is a name.
            if before in TITLES or (given and len(before) <= 12 and _given_fits(before, tuple(given))):
                return True
    return False


_ADULT_ROLES = ADULTS_WORKING_WITH_CHILDREN
_CHILDREN = frozenset({PersonRole.learner, PersonRole.former_learner})
_DESCRIBED = {PersonRole.staff: "member of staff"}
_NEED_A_LOOK = _ADULT_ROLES | {PersonRole.headteacher, PersonRole.governor}
_NOBODY = SubjectFinding()


def find_subjects(concern: ConcernReport, *, policy: Policy, reporter_is_subject: bool = False) -> SubjectFinding:
    """Everyone the concern is about, certainly or possibly, and what could not be resolved."""
    about = concern.subjects()
    if not reporter_is_subject and not any(p.person_id or p.name or p.role in _NEED_A_LOOK for p in about):
        return _NOBODY  # most concerns: children and others the policy does not name
    certain: set[str] = set()
    possible: list[PossibleSubject] = []
    unresolved: list[str] = []
    unknown_id = unidentified_adult = False
    mentions = [(p.person_id, p.name, p.role) for p in about]
    if reporter_is_subject:
        reporter = concern.reporter
        mentions.append((reporter.person_id, reporter.name, reporter.role or PersonRole.unknown))
    for person_id, name, role in mentions:
        identified = False
        if person_id:
            if policy.person(person_id) is not None:
                certain.add(person_id)
                identified = True
            else:
                unknown_id = True
                unresolved.append(f"person_id {person_id!r} is not anyone in the policy")
                possible.extend(match_unknown_id(person_id, policy=policy))
        if name:
            exact, loose = match_name(name, policy=policy)
            certain.update(exact)
            # A child is not one of the school's adults however alike the names: only exact names count.
            possible.extend(loose if role not in _CHILDREN else ())
            identified = identified or bool(exact)
        if role is PersonRole.headteacher:
            certain.update(p.id for p in policy.holders(SchoolRole.headteacher))
            identified = True
        elif role is PersonRole.governor and not identified:
            possible.extend(
                PossibleSubject(p.id, "a governor the concern does not name could be the named governor")
                for p in policy.holders(SchoolRole.named_governor)
            )
        if not identified and role in _ADULT_ROLES:
            unidentified_adult = True
            unresolved.append(f"the {_DESCRIBED.get(role, role.value)} the concern is about is not identified")
    if unidentified_adult:
        possible.extend(mentioned_in(f"{concern.summary}\n{concern.details}", policy=policy))
    seen = set(certain)
    unique = []
    for one in possible:
        if one.person_id not in seen:
            seen.add(one.person_id)
            unique.append(one)
    return SubjectFinding(
        subjects=frozenset(certain),
        possible=tuple(unique),
        unresolved=tuple(dict.fromkeys(unresolved)),
        excluded=frozenset(seen),
        # An adult nobody names is reported, but leaves nobody to exclude: only a possible match or an id the
        # policy does not know needs someone to confirm who it is.
        to_confirm=bool(unique) or unknown_id,
    )
