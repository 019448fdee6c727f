"""The web report form, pure: questions from the school's policy, a posted form's fields, the concern they make."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from python_multipart.multipart import create_form_parser

from services.routing.policy.model import Policy, Question
from services.routing.policy.vocabulary import SchoolRole
from shared.contracts.concern import ConcernReport

REPORTER_ROLES = (
    ("staff", "A member of staff, volunteer or governor"),
    ("learner", "A learner"),
    ("parent_carer", "A parent or carer"),
    ("visitor", "A visitor"),
    ("anonymous", "I would rather stay anonymous"),
)
ABOUT = (
    ("learner", "A learner"),
    ("adult_at_school", "An adult who works at the school (choose who below)"),
    ("parent_carer", "A parent or carer"),
    ("someone_else", "Someone else"),
)
ANSWERS = (("yes", "Yes"), ("no", "No"), ("not_sure", "Not sure"))
# Yes/no fields where "not sure" must count as yes: "not sure" is never read as "no". (The risk question itself
# keeps all four answers: yes, no, not_sure, not_answered.)
NOT_SURE_MEANS_YES = frozenset({"telling_parents_may_increase_risk", "harm_from_parent_or_carer"})
RISK_FIELD = "immediate_risk"
YES_NO = frozenset({"yes_no", "yes_no_not_sure"})  # both offer "not sure": nobody is made to guess


@dataclass(frozen=True)
class Upload:
    field_name: str
    filename: str
    data: bytes


@dataclass(frozen=True)
class Submission:
    """A posted form: each field's values, and the files attached."""

    fields: dict[str, list[str]]
    files: tuple[Upload, ...] = ()

    def one(self, name: str) -> str:
        """The field's first value, stripped; empty when absent."""
        values = self.fields.get(name) or [""]
        return values[0].strip()


def read_form(body: bytes, *, content_type: str) -> Submission:
    """Fields and files from a multipart/form-data or urlencoded body (ValueError when it is neither)."""
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        return Submission(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
    fields: dict[str, list[str]] = {}
    files: list[Upload] = []

    def on_field(posted: Any) -> None:
        name = posted.field_name.decode("utf-8", "replace")
        fields.setdefault(name, []).append((posted.value or b"").decode("utf-8", "replace"))

    def on_file(posted: Any) -> None:
        posted.file_object.seek(0)
        data = posted.file_object.read()
        if data or posted.file_name:
            name = (posted.file_name or b"").decode("utf-8", "replace")
            files.append(Upload(posted.field_name.decode("utf-8", "replace"), name, data))

    headers = {"Content-Type": content_type.encode("latin-1", "replace")}
    try:
        parser = create_form_parser(headers, on_field, on_file, config={"MAX_MEMORY_FILE_SIZE": float("inf")})
        parser.write(body)
        parser.finalize()
    except Exception as error:
        # python-multipart raises its own errors (and AttributeError on a missing boundary): all mean "not a form".
        raise ValueError(f"not a readable form ({type(error).__name__})") from None
    return Submission(fields, tuple(files))


@dataclass(frozen=True)
class Adult:
    person_id: str
    name: str
    role: str  # the PersonRole the concern records


@dataclass(frozen=True)
class FormSpec:
    """What a school's report page asks, from its policy."""

    school_id: str
    school_name: str
    timezone: str
    questions: tuple[Question, ...]
    kinds: tuple[tuple[str, str], ...]
    platforms: tuple[tuple[str, str], ...]
    adults: tuple[Adult, ...]
    extra: dict[str, Any] = field(default_factory=dict)


def form_spec(policy: Policy) -> FormSpec:
    """The report page for `policy`'s school: its questions, choices and the adults a concern may be about."""
    adults = tuple(
        Adult(
            person.id,
            person.name,
            "headteacher"
            if SchoolRole.headteacher in person.roles
            else "governor"
            if SchoolRole.named_governor in person.roles
            else "staff",
        )
        for person in policy.people
        if not person.external
    )
    return FormSpec(
        school_id=policy.school.id,
        school_name=policy.school.name,
        timezone=policy.working_days.timezone,
        questions=policy.report_form.questions,
        kinds=tuple((kind.id, kind.label) for kind in policy.kinds),
        platforms=tuple((platform.id, platform.label) for platform in policy.platforms),
        adults=adults,
    )


def _reporter(form: Submission) -> dict[str, Any]:
    role = form.one("reporter_role")
    if role in ("", "anonymous"):
        return {"anonymous": True}
    return {"role": role, "name": form.one("reporter_name") or None, "contact": form.one("reporter_contact") or None}


def _person(form: Submission, spec: FormSpec) -> dict[str, Any]:
    about = form.one("about")
    person: dict[str, Any] = {"involvement": "subject", "name": form.one("about_name") or None}
    if about == "adult_at_school":
        chosen = next((a for a in spec.adults if a.person_id == form.one("about_person_id")), None)
        if chosen is None:
            raise ValueError("about_person_id: choose the adult the concern is about, or choose 'Someone else'")
        return {**person, "role": chosen.role, "person_id": chosen.person_id, "name": None}
    role = {"learner": "learner", "parent_carer": "parent_carer"}.get(about, "unknown")
    year_group = form.one("about_year_group")
    return {**person, "role": role, **({"year_group": year_group} if year_group and role == "learner" else {})}


def _yes_no(answer: str, *, field_name: str | None) -> bool | None:
    if answer == "yes":
        return True
    if answer == "no":
        return False
    return True if field_name in NOT_SURE_MEANS_YES else None


def _when(text: str, *, timezone: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("occurred_at: give a date and time, e.g. 2026-03-02T09:30") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))


def concern_from_form(form: Submission, *, spec: FormSpec, attachments: tuple[str, ...] = ()) -> ConcernReport:
    """The concern a submitted report page describes (ValueError / ValidationError naming the field)."""
    concern: dict[str, Any] = {"reporter": _reporter(form), "people": [_person(form, spec)]}
    answers: dict[str, str] = {}
    for question in spec.questions:
        if question.type in ("reporter", "people"):
            continue
        answer = form.one(question.id)
        if question.type in YES_NO and question.field == RISK_FIELD:
            risk = answer if answer in ("yes", "no", "not_sure") else "not_answered"
            answers[question.id] = concern[RISK_FIELD] = risk
        elif question.type in YES_NO:
            if answer not in ("yes", "no", "not_sure"):
                if question.field in NOT_SURE_MEANS_YES:
                    answer = "not_sure"  # an unanswered safety question is "not sure", never "no"
                else:
                    continue
            answers[question.id] = answer
            if question.field:
                concern[question.field] = _yes_no(answer, field_name=question.field)
        elif question.type == "date_time":
            if question.field:
                concern[question.field] = _when(answer, timezone=spec.timezone)
        elif question.field:
            concern[question.field] = answer or None
        elif answer:
            answers[question.id] = answer
    if attachments:
        answers["attachments"] = "; ".join(attachments)
    concern["answers"] = answers
    return ConcernReport.model_validate({k: v for k, v in concern.items() if v is not None})
