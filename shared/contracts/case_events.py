"""The case workflow's events: what the DSL and staff did on a case, and why (one frozen class per version)."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import Event
from shared.contracts.parent_message import ParentMessage


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


CaseType = Literal["concern", "staff_allegation", "low_level_concern", "staff_declaration"]
CaseInvolvement = Literal["subject", "alleged_perpetrator", "victim", "witness", "reporter"]
CaseAction = Literal[
    "spoke_to_learner",
    "parents_contacted",
    "referral_to_childrens_social_care",
    "lado_referral",
    "police",
    "pastoral_support",
    "sanction",
    "early_help",
    "other",
]
DecisionKind = Literal["refer", "not_refer", "staff_declaration", "harm_threshold", "other"]
Agency = Literal["childrens_social_care", "lado", "police", "early_help"]
ParentsDecision = Literal["inform", "withhold"]
ParentsBefore = Literal["inform", "withhold", "not_applicable"]
ParentChannel = Literal["email", "sms"]

_TEXT = 5_000
_WORD = r"^[a-z][a-z0-9_]*$"


class CaseAcknowledgedPayload(_Payload):
    case_id: str
    acknowledged_by: str = Field(description="person id of whoever took the case on")
    role: str


class CaseAcknowledged(Event[CaseAcknowledgedPayload]):
    """Someone told about the case acknowledged it: the case is being handled."""

    TYPE: ClassVar[str] = "case.acknowledged"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseReassignedPayload(_Payload):
    case_id: str
    from_person_id: str | None = Field(description="None when the case had nobody assigned")
    to_person_id: str
    to_role: str
    reason: str = Field(default="", max_length=_TEXT)


class CaseReassigned(Event[CaseReassignedPayload]):
    """The case was handed to another person to lead."""

    TYPE: ClassVar[str] = "case.reassigned"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseActionRecordedPayload(_Payload):
    case_id: str
    action: CaseAction
    details: str = Field(default="", max_length=_TEXT)
    person_id: str | None = Field(default=None, description="the linked person the action concerned, if any")


class CaseActionRecorded(Event[CaseActionRecordedPayload]):
    """Something done on the case, e.g. parents contacted or a referral to children's social care."""

    TYPE: ClassVar[str] = "case.action_recorded"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseParentNotificationDecidedPayload(_Payload):
    case_id: str
    decision: ParentsDecision
    previous: ParentsBefore = Field(description="what stood before: triage's decision or an earlier one")
    overridden: bool = Field(description="True when the decision changes what stood before")
    reason: str = Field(min_length=1, max_length=_TEXT)


class CaseParentNotificationDecided(Event[CaseParentNotificationDecidedPayload]):
    """The DSL (or a deputy) decided whether parents are told, withholding or overriding, with the reason."""

    TYPE: ClassVar[str] = "case.parent_notification_decided"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CasePersonLinkedPayload(_Payload):
    case_id: str
    person_id: str
    role: str = Field(description="who the person is to the school (learner, staff, parent_carer, ...)")
    involvement: CaseInvolvement = Field(description="this person's own part in the concern")
    name: str | None = Field(default=None, max_length=200)
    age: int | None = Field(default=None, ge=0, le=130)
    year_group: str | None = Field(default=None, max_length=40)


class CasePersonLinked(Event[CasePersonLinkedPayload]):
    """A person was linked to the case with their own involvement in it."""

    TYPE: ClassVar[str] = "case.person_linked"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseDecisionRecordedPayload(_Payload):
    case_id: str
    kind: DecisionKind = Field(description="refer, not_refer (a decision not to refer), staff_declaration, ...")
    decision: str = Field(min_length=1, max_length=_TEXT)
    reasons: str = Field(min_length=1, max_length=_TEXT)
    advice: str = Field(default="", max_length=_TEXT, description="advice given, e.g. to a declaring member of staff")
    agency: Agency | None = Field(default=None, description="who was (or was not) referred to")
    decided_by_role: str


class CaseDecisionRecorded(Event[CaseDecisionRecordedPayload]):
    """A decision on the case and its reasons, including a decision not to refer."""

    TYPE: ClassVar[str] = "case.decision_recorded"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseReclassifiedPayload(_Payload):
    case_id: str
    from_type: CaseType
    to_type: CaseType
    reason: str = Field(min_length=1, max_length=_TEXT)


class CaseReclassified(Event[CaseReclassifiedPayload]):
    """The case changed type, e.g. a concern about staff found below the harm threshold is a low-level concern."""

    TYPE: ClassVar[str] = "case.reclassified"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseOutcomeRecordedPayload(_Payload):
    case_id: str
    case_type: CaseType
    outcome: str = Field(pattern=_WORD, max_length=80)
    summary: str = Field(min_length=1, max_length=_TEXT)
    previous_outcome: str | None = None


class CaseOutcomeRecorded(Event[CaseOutcomeRecordedPayload]):
    """The outcome of the case; an allegation about staff ends in one of the five KCSIE outcomes."""

    TYPE: ClassVar[str] = "case.outcome_recorded"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseInvestigationCompletedPayload(_Payload):
    case_id: str
    summary: str = Field(min_length=1, max_length=_TEXT)


class CaseInvestigationCompleted(Event[CaseInvestigationCompletedPayload]):
    """The investigation of the case is complete."""

    TYPE: ClassVar[str] = "case.investigation_completed"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseDebriefRequestedPayload(_Payload):
    case_id: str
    requested_of: list[str] = Field(min_length=1, description="the roles asked to debrief, e.g. leadership_team")
    focus: str = Field(default="", max_length=_TEXT, description="what the debrief should look at")


class CaseDebriefRequested(Event[CaseDebriefRequestedPayload]):
    """Leadership is asked to debrief and identify lessons learnt after the investigation."""

    TYPE: ClassVar[str] = "case.debrief_requested"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class DebriefAction(_Payload):
    action_id: str = Field(min_length=1, max_length=100)
    description: str = Field(min_length=1, max_length=_TEXT)
    owner: str = Field(min_length=1, max_length=100, description="person id of whoever must do it")
    due_on: date


class PolicyChange(_Payload):
    change: str = Field(min_length=1, max_length=_TEXT)
    policy_version: int = Field(ge=1, description="the policy version whose decision on this case prompted it")


class CaseDebriefRecordedPayload(_Payload):
    case_id: str
    lessons_learnt: str = Field(min_length=1, max_length=_TEXT)
    policy_changes: list[PolicyChange] = Field(default_factory=list, max_length=50)
    curriculum_changes: list[str] = Field(default_factory=list, max_length=50)
    actions: list[DebriefAction] = Field(default_factory=list, max_length=50)


class CaseDebriefRecorded(Event[CaseDebriefRecordedPayload]):
    """The debrief after the investigation (policy section 7): lessons learnt, changes asked for, actions owned."""

    TYPE: ClassVar[str] = "case.debrief_recorded"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseDebriefActionCompletedPayload(_Payload):
    case_id: str
    action_id: str
    note: str = Field(default="", max_length=_TEXT)


class CaseDebriefActionCompleted(Event[CaseDebriefActionCompletedPayload]):
    """An action from the case's debrief is done; it is no longer reminded."""

    TYPE: ClassVar[str] = "case.debrief_action_completed"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


# The `reason` of a notification reminding an owner of a debrief action: its own words per channel, no case detail.
DEBRIEF_ACTION_DUE = "debrief_action_due"


class DebriefActionDuePayload(_Payload):
    case_id: str
    reference: str = Field(description="the case's reference, as notifications name it")
    action_id: str = Field(min_length=1, max_length=100)
    owner_id: str = Field(description="person id of the action's owner, who is reminded")
    reminded: list[str] = Field(description="person ids reminded: the owner, or the DSLs when the owner has left")
    due_on: date
    reminder_number: int = Field(ge=1, description="1 on the due date, then one more at each repeat")
    repeats_every_hours: float = Field(gt=0, description="until the action is marked done")


class DebriefActionDue(Event[DebriefActionDuePayload]):
    """A debrief action is due and not done: its owner is reminded, again at a fixed interval until it is."""

    TYPE: ClassVar[str] = "debrief.action_due"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "debrief"


class CaseClosedPayload(_Payload):
    case_id: str
    case_type: CaseType
    outcome: str | None = Field(description="the recorded outcome; a staff declaration may close on its decision")
    summary: str = Field(min_length=1, max_length=_TEXT)


class CaseClosed(Event[CaseClosedPayload]):
    """The case was closed."""

    TYPE: ClassVar[str] = "case.closed"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseReopenedPayload(_Payload):
    case_id: str
    reason: str = Field(min_length=1, max_length=_TEXT)
    previous_outcome: str | None = None


class CaseReopened(Event[CaseReopenedPayload]):
    """A closed case was reopened; it needs a fresh outcome before it closes again."""

    TYPE: ClassVar[str] = "case.reopened"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseParentsInformedPayload(_Payload):
    case_id: str
    parent_id: str = Field(description="the id the parent or carer is told under (made for this case, names nobody)")
    name: str = Field(max_length=200, description="the parent or carer, as the DSL gave it, for the record")
    relationship: str = Field(max_length=80, description="who they are to the child, e.g. mother, carer")
    channel: ParentChannel
    address: str = Field(max_length=320, description="the email address or phone number the DSL gave")
    notification_id: str = Field(description="the one message this asks for")
    policy_version: int = Field(description="the policy version whose words are sent (the case's)")
    words: ParentMessage = Field(description="the school's words to parents, exactly as sent")
    basis: str = Field(max_length=_TEXT, description="the parents decision it rests on: its reason")


class CaseParentsInformed(Event[CaseParentsInformedPayload]):
    """The DSL had the school's message sent to a parent or carer, on a case whose decision is to inform them."""

    TYPE: ClassVar[str] = "case.parents_informed"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


CASE_WORKFLOW_EVENTS: tuple[type[Event[Any]], ...] = (
    CaseAcknowledged,
    CaseReassigned,
    CaseActionRecorded,
    CaseParentNotificationDecided,
    CaseParentsInformed,
    CasePersonLinked,
    CaseDecisionRecorded,
    CaseReclassified,
    CaseOutcomeRecorded,
    CaseInvestigationCompleted,
    CaseDebriefRequested,
    CaseDebriefRecorded,
    CaseDebriefActionCompleted,
    CaseClosed,
    CaseReopened,
)


class CaseCommandRefusedPayload(_Payload):
    case_id: str = Field(default="", description="the case the command named, if it named one")
    command: str = Field(default="", max_length=80, description="what was asked, e.g. acknowledge")
    code: str = Field(max_length=40, description="why, as a word: unsigned, expired, bad_signature, replayed, …")
    reason: str = Field(max_length=1_000, description="why, in a sentence")
    issuer: str = Field(default="", max_length=80, description="who vouched for the asker, when anyone verifiably did")
    person_id: str = Field(default="", max_length=100, description="the asker, when a valid assertion named them")
    token_id: str = Field(default="", max_length=40, description="the assertion's unique id, when it was readable")


class CaseCommandRefused(Event[CaseCommandRefusedPayload]):
    """Routing refused a command because it could not tell that an authorised person of the school asked."""

    TYPE: ClassVar[str] = "case.command_refused"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"
