"""Who may decide what on a case, in the policy's own role names."""

from __future__ import annotations

from services.routing.case.state import CaseState
from services.routing.policy import vocabulary

# An actor's role arrives as a plain string: compare with the vocabulary's values.
DSL = vocabulary.DSL.value
DEPUTY = vocabulary.DEPUTY.value
HEADTEACHER = vocabulary.HEADTEACHER.value
NAMED_GOVERNOR = vocabulary.NAMED_GOVERNOR.value

SAFEGUARDING_LEADS = frozenset({DSL, DEPUTY})
DECLARATION_DECIDERS = frozenset({DSL, HEADTEACHER})
STAFF_MATTERS = frozenset({"staff_allegation", "low_level_concern"})

_SPOKEN = {
    DSL: "the DSL",
    DEPUTY: "a deputy DSL",
    HEADTEACHER: "the headteacher",
    NAMED_GOVERNOR: "the named governor",
    vocabulary.TRUST_ADMINISTRATOR.value: "the trust administrator",
}


def case_managers(state: CaseState) -> frozenset[str]:
    """Who may make decisions on this case; an allegation or low-level concern may fall to the named governor."""
    managers = SAFEGUARDING_LEADS | {HEADTEACHER}
    return managers | {NAMED_GOVERNOR} if state.case_type in STAFF_MATTERS else managers


def spoken(roles: frozenset[str]) -> str:
    """The roles as a person would list them, e.g. 'the DSL, a deputy DSL or the headteacher'."""
    names = [name for role, name in _SPOKEN.items() if role in roles] + sorted(roles - _SPOKEN.keys())
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
