"""Need-to-know in the console as a table a DSL can read, and the account rules `safeguard user add` applies."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from services.console.access import (
    AccountRefused,
    CaseFacts,
    Principal,
    check_account,
    may_break_glass,
    may_see_case,
    schools_in_scope,
)
from services.console.passwords import LockOut, totp_step
from services.routing.policy.load import load_policy
from tests.conftest import REPO_ROOT

CONCERN = CaseFacts("st-marks", "concern", subject_person_ids=(), recipient_person_ids=("s-bird",))
ABOUT_DEPUTY = CaseFacts("st-marks", "concern", subject_person_ids=("r-crane",), recipient_person_ids=())
ALLEGATION = CaseFacts("st-marks", "staff_allegation", subject_person_ids=("headteacher",), recipient_person_ids=())
ELSEWHERE = CaseFacts("oak-academy", "concern", subject_person_ids=(), recipient_person_ids=())


def person(role: str, person_id: str) -> Principal:
    return Principal("a", "u", person_id, role, "st-marks", frozenset({"st-marks"}))


@pytest.mark.parametrize(
    ("who", "case", "verdict"),
    [
        (person("designated_safeguarding_lead", "s-bird"), CONCERN, "allowed"),
        (person("deputy_designated_safeguarding_lead", "r-crane"), ABOUT_DEPUTY, "hidden"),
        (person("headteacher", "headteacher"), ALLEGATION, "hidden"),
        (person("named_governor", "d-hill"), ALLEGATION, "allowed"),
        (person("named_governor", "d-hill"), CONCERN, "restricted"),
        (person("staff", "teacher-1"), CONCERN, "forbidden"),
        (person("trust_administrator", "admin-1"), CONCERN, "forbidden"),
        (person("auditor", "auditor-1"), CONCERN, "allowed"),
        (person("designated_safeguarding_lead", "s-bird"), ELSEWHERE, "hidden"),
    ],
)
def test_who_may_see_a_case(who: Principal, case: CaseFacts, verdict: str) -> None:
    assert may_see_case(who, case) == verdict


POSSIBLY_ABOUT_GOVERNOR = CaseFacts("st-marks", "concern", subject_person_ids=("d-hill",), recipient_person_ids=())


@pytest.mark.parametrize(
    ("who", "case", "verdict"),
    [
        # Only what need-to-know alone keeps from a reader role opens by break-glass.
        (person("named_governor", "d-hill"), CONCERN, "allowed"),
        # Never a case about the person asking, possible subjects included: it stays hidden.
        (person("named_governor", "d-hill"), POSSIBLY_ABOUT_GOVERNOR, "hidden"),
        (person("headteacher", "headteacher"), ALLEGATION, "hidden"),
        (person("designated_safeguarding_lead", "s-bird"), ELSEWHERE, "hidden"),
        # Nothing to break for a case they may open anyway; nothing at all for staff and trust administrators.
        (person("designated_safeguarding_lead", "s-bird"), CONCERN, "forbidden"),
        (person("staff", "teacher-1"), CONCERN, "forbidden"),
        (person("trust_administrator", "admin-1"), CONCERN, "forbidden"),
        (person("auditor", "auditor-1"), CONCERN, "forbidden"),
    ],
)
def test_who_may_break_glass(who: Principal, case: CaseFacts, verdict: str) -> None:
    assert may_break_glass(who, case) == verdict


def test_trust_wide_roles_see_every_school_of_their_trust_and_others_their_own() -> None:
    trusts = {"a": "Oak Trust", "b": "Oak Trust", "c": None}
    assert schools_in_scope("a", "trust_safeguarding_lead", trusts=trusts) == {"a", "b"}
    assert schools_in_scope("a", "designated_safeguarding_lead", trusts=trusts) == {"a"}
    assert schools_in_scope("c", "auditor", trusts=trusts) == {"c"}


@pytest.mark.parametrize(
    ("person_id", "role", "refusal"),
    [
        ("s-bird", "designated_safeguarding_lead", None),
        ("teacher-1", "staff", None),
        ("r-crane", "designated_safeguarding_lead", "does not give"),
        ("nobody", "headteacher", "names nobody"),
        ("s-bird", "superuser", "unknown role"),
        ("kent-lado", "staff", "outside the school"),
    ],
)
def test_an_account_holds_a_policy_role_only_if_the_policy_gives_it(
    person_id: str, role: str, refusal: str | None
) -> None:
    policy = load_policy(REPO_ROOT / "deploy" / "policies" / "st-marks.yaml")
    if refusal is None:
        check_account(policy, person_id=person_id, role=role)
    else:
        with pytest.raises(AccountRefused, match=refusal):
            check_account(policy, person_id=person_id, role=role)


def test_a_totp_code_counts_once_and_only_near_its_time() -> None:
    secret, now = pyotp.random_base32(), datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    code = pyotp.TOTP(secret).at(now)
    step = totp_step(code, secret=secret, now=now, last_step=0)
    assert step is not None
    assert totp_step(code, secret=secret, now=now, last_step=step) is None
    assert totp_step(code, secret=secret, now=now.replace(hour=10), last_step=0) is None
    assert totp_step("12345", secret=secret, now=now, last_step=0) is None


def test_the_fifth_failure_locks_for_the_configured_time() -> None:
    lock_out, now = LockOut(after=5, minutes=15), datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert lock_out.after_failure(4, now=now) is None
    until = lock_out.after_failure(5, now=now)
    assert lock_out.locked(until, now=now) and not lock_out.locked(until, now=now.replace(minute=16))
