"""What staff ask of a case, as the console sends it: one model per command, told apart by `command`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from shared.contacts import e164, email_address
from shared.contracts.case_events import (
    Agency,
    CaseAction,
    CaseInvolvement,
    CaseType,
    DecisionKind,
    ParentChannel,
    ParentsDecision,
)
from shared.contracts.concern import PersonRole
from shared.contracts.envelope import Actor
from shared.validation import field_path, problems

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5_000)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5_000)]
PersonId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Word = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=80)]


class _CaseCommand(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str = Field(min_length=1, max_length=200)
    school_id: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")
    actor: Actor = Field(description="who asks: their person id and their role in the school")
    expected_version: int | None = Field(
        default=None, ge=0, description="the case version the asker saw; refused if the case has moved on"
    )


class Acknowledge(_CaseCommand):
    """Take the case on; acknowledging an acknowledged case changes nothing."""

    command: Literal["acknowledge"]


class Assignee(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: PersonId
    role: Annotated[str, StringConstraints(min_length=1, max_length=80)]


class Reassign(_CaseCommand):
    """Hand the case to another person to lead."""

    command: Literal["reassign"]
    to: Assignee
    reason: OptionalText = ""


class RecordAction(_CaseCommand):
    """Record something done on the case."""

    command: Literal["record_action"]
    action: CaseAction
    details: OptionalText = ""
    person_id: PersonId | None = None


class DecideParentNotification(_CaseCommand):
    """Withhold from parents, or override an earlier decision, always with the reason."""

    command: Literal["decide_parent_notification"]
    decision: ParentsDecision
    reason: Text


class InformParents(_CaseCommand):
    """Send the school's words to a parent or carer the DSL names, where the case's decision is to inform them."""

    command: Literal["inform_parents"]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] = Field(
        description="the parent or carer, for the record (never in the message)"
    )
    relationship: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)] = Field(
        description="who they are to the child, e.g. mother, father, carer"
    )
    channel: ParentChannel
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)] = Field(
        description="an email address, or a phone number in international form (+44 7700 900123)"
    )

    @field_validator("address")
    @classmethod
    def _reachable(cls, address: str, info: ValidationInfo) -> str:
        """The address in one form for its channel (the channel is read first); ValueError when it is not one."""
        channel = info.data.get("channel")
        if channel is None:  # the channel itself is wrong: that is the problem to name
            return address
        if channel == "email":
            usable = email_address(address)
            if usable is None:
                raise ValueError("not an email address (like name@example.org)")
            return usable
        usable = e164(address)
        if usable is None:
            raise ValueError("not a mobile number in international form (like +44 7700 900123)")
        return usable


class PersonToLink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: PersonId
    role: PersonRole
    involvement: CaseInvolvement
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    age: int | None = Field(default=None, ge=0, le=130)
    year_group: Annotated[str, StringConstraints(max_length=40)] | None = None


class LinkPerson(_CaseCommand):
    """Link a person to the case with their own involvement in it."""

    command: Literal["link_person"]
    person: PersonToLink


class RecordDecision(_CaseCommand):
    """Record a decision and its reasons, including a decision not to refer."""

    command: Literal["record_decision"]
    kind: DecisionKind
    decision: Text
    reasons: Text
    advice: OptionalText = ""
    agency: Agency | None = None


class Reclassify(_CaseCommand):
    """Change the case type, e.g. a concern about staff below the harm threshold to a low-level concern."""

    command: Literal["reclassify"]
    case_type: CaseType
    reason: Text


class RecordOutcome(_CaseCommand):
    """Record the outcome of the case."""

    command: Literal["record_outcome"]
    outcome: Word
    summary: Text


class CompleteInvestigation(_CaseCommand):
    """Mark the investigation complete."""

    command: Literal["complete_investigation"]
    summary: Text


class RequestDebrief(_CaseCommand):
    """Ask leadership to debrief once the investigation is complete."""

    command: Literal["request_debrief"]
    requested_of: list[Word] = Field(default_factory=lambda: ["leadership_team"], min_length=1, max_length=10)
    focus: OptionalText = ""


class DebriefActionToDo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: PersonId
    description: Text
    owner: PersonId
    due_on: date


class RecordDebrief(_CaseCommand):
    """Record the debrief (policy section 7): lessons learnt, policy and curriculum changes, actions with owners."""

    command: Literal["record_debrief"]
    lessons_learnt: Text
    policy_changes: list[Text] = Field(default_factory=list, max_length=50)
    curriculum_changes: list[Text] = Field(default_factory=list, max_length=50)
    actions: list[DebriefActionToDo] = Field(default_factory=list, max_length=50)


class CompleteDebriefAction(_CaseCommand):
    """Mark one of the debrief's actions done."""

    command: Literal["complete_debrief_action"]
    action_id: PersonId
    note: OptionalText = ""


class Close(_CaseCommand):
    """Close the case (it must have an outcome, or for a staff declaration its recorded decision)."""

    command: Literal["close"]
    summary: Text


class Reopen(_CaseCommand):
    """Reopen a closed case, with the reason."""

    command: Literal["reopen"]
    reason: Text


CaseCommand = Annotated[
    Acknowledge
    | Reassign
    | RecordAction
    | DecideParentNotification
    | InformParents
    | LinkPerson
    | RecordDecision
    | Reclassify
    | RecordOutcome
    | CompleteInvestigation
    | RequestDebrief
    | RecordDebrief
    | CompleteDebriefAction
    | Close
    | Reopen,
    Field(discriminator="command"),
]

_ADAPTER: TypeAdapter[CaseCommand] = TypeAdapter(CaseCommand)
COMMAND_NAMES: tuple[str, ...] = tuple(
    get_args(model.model_fields["command"].annotation)[0] for model in get_args(get_args(CaseCommand)[0])
)


def parse_command(document: dict[str, Any]) -> CaseCommand:
    """The command a JSON object asks for; raises pydantic's ValidationError naming the field."""
    return _ADAPTER.validate_python(document)


def describe_invalid(error: ValidationError) -> str:
    """A validation error in the console's words, each problem led by the field it is about."""
    worded = []
    for problem in problems(error, limit=5):
        location, message = problem.location, problem.message
        if problem.type == "union_tag_not_found":
            location, message = ("command",), f"Field required: one of {', '.join(COMMAND_NAMES)}"
        elif problem.type == "union_tag_invalid":
            location = ("command",)
        elif location and location[0] in COMMAND_NAMES:
            location = location[1:]  # pydantic leads with the union member; the console only knows its fields
        worded.append(f"{field_path(location) or 'command'}: {message}")
    return "invalid command: " + "; ".join(worded)
