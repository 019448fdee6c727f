"""Who may see and do what in the console: roles from the school's policy people, need-to-know, school scope.

Pure functions over plain data; the HTTP layer asks them, and PostgreSQL's row-level security backs the
school part up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from services.routing.case.roles import DEPUTY, DSL, HEADTEACHER, NAMED_GOVERNOR, STAFF_MATTERS
from services.routing.policy.model import Policy, SchoolRole

STAFF = "staff"
TRUST_LEAD = SchoolRole.trust_safeguarding_lead.value
AUDITOR = "auditor"
TRUST_ADMINISTRATOR = SchoolRole.trust_administrator.value

CONSOLE_ROLES = (DSL, DEPUTY, HEADTEACHER, NAMED_GOVERNOR, STAFF, TRUST_LEAD, AUDITOR, TRUST_ADMINISTRATOR)
# Roles the policy itself assigns: an account may hold one only if the policy gives it to that person.
POLICY_ROLES = frozenset({DSL, DEPUTY, HEADTEACHER, NAMED_GOVERNOR, TRUST_LEAD, TRUST_ADMINISTRATOR})
CASE_READERS = frozenset({DSL, DEPUTY, HEADTEACHER, NAMED_GOVERNOR, TRUST_LEAD, AUDITOR})
# Routing decides which of these may do what on a case; the console only keeps everyone else from asking.
CASE_WORKERS = frozenset({DSL, DEPUTY, HEADTEACHER, NAMED_GOVERNOR})
TRUST_WIDE = frozenset({TRUST_LEAD, AUDITOR, TRUST_ADMINISTRATOR})
# Counts per school and kind, no case content: those who answer for safeguarding across a school or the trust.
OVERVIEW_READERS = frozenset({DSL, DEPUTY, HEADTEACHER, TRUST_LEAD, AUDITOR})
# The record as it stood at any moment, its verification and its export (audit checks the role again).
AUDIT_READERS = frozenset({AUDITOR, TRUST_LEAD})
# Who may open a case their need to know does not cover, stating a reason (recorded, and the DSLs alerted).
BREAK_GLASS_ROLES = frozenset({DSL, DEPUTY, HEADTEACHER, NAMED_GOVERNOR, TRUST_LEAD})
# People and policies (no case content): the trust's administrator across its schools, a school's DSL and head
# for their own school.
ADMINISTRATORS = frozenset({TRUST_ADMINISTRATOR, DSL, HEADTEACHER})


class Page(StrEnum):
    """What a person can open, for the access checks and the access-matrix test."""

    inbox = "inbox"
    case = "case"
    case_command = "case_command"
    my_reports = "my_reports"
    people = "people"
    overview = "overview"
    audit = "audit"
    break_glass = "break_glass"
    admin = "admin"
    device = "device"


@dataclass(frozen=True)
class Principal:
    """A signed-in person: their account, their person id and role, and the schools they may see."""

    account_id: str
    username: str
    person_id: str
    role: str
    school_id: str
    school_ids: frozenset[str]


@dataclass(frozen=True)
class CaseFacts:
    """What need-to-know looks at in a case."""

    school_id: str
    case_type: str
    subject_person_ids: tuple[str, ...]
    recipient_person_ids: tuple[str, ...]


# hidden: not theirs at all (404); forbidden: their role never opens it (403); restricted: their role could, but
# their need to know does not cover this case (403, and break-glass may open it).
Verdict = Literal["allowed", "forbidden", "hidden", "restricted"]


def may_open(principal: Principal, page: Page) -> bool:
    """Whether the role may open this kind of page at all."""
    if page in (Page.inbox, Page.case):
        return principal.role in CASE_READERS
    if page is Page.case_command:
        return principal.role in CASE_WORKERS
    if page is Page.my_reports:
        return True
    if page is Page.overview:
        return principal.role in OVERVIEW_READERS
    if page is Page.audit:
        return principal.role in AUDIT_READERS
    if page is Page.break_glass:
        return principal.role in BREAK_GLASS_ROLES
    if page is Page.device:
        return True
    return principal.role in ADMINISTRATORS


def may_manage(principal: Principal, *, school_id: str, role: str) -> bool:
    """Whether this person may give, disable or reset an account with `role` at `school_id`.

    A school's DSL or headteacher manages their own school's accounts, never a trust-wide one (an auditor sees
    every school of the trust); the trust administrator manages every account of the trust's schools.
    """
    if principal.role not in ADMINISTRATORS or school_id not in principal.school_ids:
        return False
    return principal.role == TRUST_ADMINISTRATOR or role not in TRUST_WIDE


def may_see_case(principal: Principal, case: CaseFacts, *, page: Page = Page.case) -> Verdict:
    """Whether this person may see (or act on) this case: another school's, or one about them, does not exist."""
    if case.school_id not in principal.school_ids or principal.person_id in case.subject_person_ids:
        return "hidden"
    if not may_open(principal, page):
        return "forbidden"
    # The named governor is there for allegations (about the headteacher above all), not every concern.
    if principal.role == NAMED_GOVERNOR and not (
        case.case_type in STAFF_MATTERS or principal.person_id in case.recipient_person_ids
    ):
        return "restricted"
    return "allowed"


def may_break_glass(principal: Principal, case: CaseFacts) -> Verdict:
    """Whether this person may open this case by break-glass: only a case their need to know alone keeps from them.

    Never a case about them (it stays hidden: break-glass must not show anyone an allegation against themselves),
    nor another school's, nor for a role that opens no case (staff, trust administrator)."""
    verdict = may_see_case(principal, case)
    if verdict == "hidden":
        return "hidden"
    if not may_open(principal, Page.break_glass):
        return "forbidden"
    return "allowed" if verdict == "restricted" else "forbidden"


def schools_in_scope(school_id: str, role: str, *, trusts: Mapping[str, str | None]) -> frozenset[str]:
    """The schools a role sees: trust-wide roles every school of the school's trust, everyone else their own."""
    trust = trusts.get(school_id)
    if role in TRUST_WIDE and trust:
        return frozenset(school for school, its_trust in trusts.items() if its_trust == trust)
    return frozenset({school_id})


class AccountRefused(ValueError):
    """An account that cannot be created, in words the person creating it understands."""


def check_account(policy: Policy, *, person_id: str, role: str) -> None:
    """Refuse a role the console does not know, or a policy role the policy does not give this person."""
    if role not in CONSOLE_ROLES:
        raise AccountRefused(f"unknown role {role!r}; one of: {', '.join(CONSOLE_ROLES)}")
    person = next((p for p in policy.people if p.id == person_id), None)
    if role in POLICY_ROLES:
        if person is None:
            raise AccountRefused(f"{policy.school.id}'s policy names nobody with id {person_id!r}")
        if role not in {held.value for held in person.roles}:
            raise AccountRefused(f"{policy.school.id}'s policy does not give {person_id!r} the role {role}")
    if person is not None and person.external and role not in (TRUST_LEAD, TRUST_ADMINISTRATOR):
        raise AccountRefused(f"{person_id!r} is outside the school and cannot hold a console account as {role}")
