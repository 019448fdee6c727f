"""Who a concern is about: however a person of the policy is written, they are never told of a concern about them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.policy import Decision, Person, decide, load_policy
from services.routing.policy.subjects import name_tokens
from shared.contracts.concern import ConcernReceivedPayload

REPO = Path(__file__).resolve().parents[3]
ST_MARKS = load_policy(REPO / "deploy" / "policies" / "st-marks.yaml")
TITLES = ["", "Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Mr.", "MRS", "mr"]
SUFFIXES = ["", " (DSL)", " (staff)", ", year 3 teacher", " - deputy head"]
ADULT_ROLES = ["staff", "volunteer", "contractor", "governor", "visitor", "unknown"]


@st.composite
def written_names(draw: st.DrawFn, person: Person, *, for_text: bool = False) -> str:
    """One way a reporter might write `person`'s name: titles, initials, case, punctuation, slips."""
    *given_names, surname = name_tokens(person.name)
    if len(surname) >= 5 and draw(st.booleans()):
        at = draw(st.integers(min_value=1, max_value=len(surname) - 2))
        surname = surname[:at] + surname[at + 1] + surname[at] + surname[at + 2 :]  # two letters swapped
    form = draw(st.sampled_from(["as_written", "initials", "expanded", "none"]))
    if form == "initials":
        given_names = [g[0] for g in given_names]
    elif form == "expanded":
        given_names = [
            g + draw(st.text("aeiourstln", min_size=2, max_size=6)) if len(g) == 1 else g for g in given_names
        ]
    elif form == "none":
        given_names = []
    title = draw(st.sampled_from(TITLES))
    if for_text and not title and not given_names:
        title = "Mrs"  # in running text a bare surname is an ordinary word ("bird", "hill")
    dot = draw(st.sampled_from(["", "."]))
    words = [title, *(g.capitalize() + (dot if len(g) == 1 else "") for g in given_names), surname.capitalize()]
    written = " ".join(w for w in words if w)
    written = draw(st.sampled_from([written, written.upper(), written.lower(), "  " + written.replace(" ", "  ")]))
    return written + ("" if for_text else draw(st.sampled_from(SUFFIXES)))


def concern(**fields: Any) -> ConcernReceivedPayload:
    body: dict[str, Any] = {
        "reporter": {"role": "parent_carer"},
        "kind": "staff_social_media_misuse",
        "summary": "A made-up concern",
        "reference": "SG-NAMES-1",
        "channel": "web_form",
        "raw_input_id": "raw-1",
        "received_at": "2024-03-05T10:15:00Z",
    } | fields
    return ConcernReceivedPayload.model_validate(body)


def left_out(decision: Decision, person: Person) -> None:
    assert person.id not in {r.person_id for r in decision.recipients}, f"{person.id} was told"
    assert person.id in decision.excluded_person_ids


PEOPLE = st.sampled_from(ST_MARKS.people)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), person=PEOPLE, role=st.sampled_from(ADULT_ROLES))
def test_a_subject_written_any_way_is_never_told(data: st.DataObject, person: Person, role: str) -> None:
    name = data.draw(written_names(person))
    involvement = data.draw(st.sampled_from(["subject", "alleged_perpetrator"]))
    decision = decide(concern(people=[{"role": role, "involvement": involvement, "name": name}]), ST_MARKS)
    left_out(decision, person)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), person=PEOPLE)
def test_an_unnamed_adult_subject_named_in_the_text_is_never_told(data: st.DataObject, person: Person) -> None:
    name = data.draw(written_names(person, for_text=True))
    summary = data.draw(
        st.sampled_from(["{} posted photos of my son.", "Messages came from {}'s account.", "I think it was {}"])
    )
    people = [{"role": "staff", "involvement": "alleged_perpetrator"}, {"role": "learner", "involvement": "victim"}]
    decision = decide(
        concern(people=people, kind="staff_personal_account_contact", summary=summary.format(name)), ST_MARKS
    )
    left_out(decision, person)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), person=PEOPLE)
def test_a_declaring_reporter_named_any_way_is_never_told(data: st.DataObject, person: Person) -> None:
    name = data.draw(written_names(person))
    reporter = {"role": "staff", "name": name}
    people = [{"role": "staff", "involvement": "subject"}]
    decision = decide(concern(reporter=reporter, people=people, kind="content_conflicts_with_role"), ST_MARKS)
    left_out(decision, person)


def test_an_unknown_person_id_is_reported_and_whoever_it_looks_like_is_left_out() -> None:
    decision = decide(
        concern(people=[{"role": "staff", "involvement": "alleged_perpetrator", "person_id": "sbird"}]), ST_MARKS
    )
    assert "person_id 'sbird' is not anyone in the policy" in decision.subject_notes
    assert [p.person_id for p in decision.possible_subjects] == ["s-bird"]
    assert decision.subject_to_confirm
    assert "headteacher" in {r.person_id for r in decision.recipients}


def test_an_unknown_person_id_like_nobody_is_still_reported_and_goes_to_the_headteacher_to_confirm() -> None:
    decision = decide(
        concern(people=[{"role": "staff", "involvement": "alleged_perpetrator", "person_id": "zz-99"}]), ST_MARKS
    )
    assert "person_id 'zz-99' is not anyone in the policy" in decision.subject_notes
    assert decision.possible_subjects == ()
    assert decision.subject_to_confirm and "headteacher" in {r.person_id for r in decision.recipients}


def test_a_learner_who_shares_a_surname_with_the_dsl_does_not_keep_the_dsl_away() -> None:
    people = [{"role": "learner", "involvement": "subject", "name": "Sam Bird", "age": 9}]
    decision = decide(concern(people=people, kind="online_bullying"), ST_MARKS)
    assert "s-bird" in {r.person_id for r in decision.recipients}
    assert not decision.subject_to_confirm


def test_a_witness_named_in_the_text_of_a_concern_about_a_named_person_is_not_left_out() -> None:
    people = [{"role": "staff", "involvement": "alleged_perpetrator", "person_id": "r-crane"}]
    decision = decide(concern(people=people, summary="I told Mr Bird straight away."), ST_MARKS)
    assert "s-bird" in {r.person_id for r in decision.recipients}
    assert decision.subject_person_ids == ("r-crane",)
