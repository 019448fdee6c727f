"""Every event type Safeguard publishes, one frozen class per version (past-tense names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import concern_v1
from shared.contracts.concern import ConcernReceivedPayload, risk_answer_from_old_boolean
from shared.contracts.envelope import Event, registry
from shared.contracts.parent_message import ParentMessage


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Urgency = Literal["immediate", "high", "medium", "low"]
ParentNotification = Literal["inform", "withhold", "not_applicable"]
NotificationChannel = Literal["push", "email", "sms", "log"]


class ConcernReceivedV1(Event[concern_v1.ConcernReceivedPayload]):
    """Intake accepted a concern and gave it a reference number."""

    # Published as "ConcernReceived": the title is part of the frozen v1 schema.
    model_config = ConfigDict(title="ConcernReceived")

    TYPE: ClassVar[str] = "concern.received"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "concern"


class ConcernReceived(Event[ConcernReceivedPayload]):
    """Intake accepted a concern and gave it a reference number; the risk question has four answers."""

    TYPE: ClassVar[str] = "concern.received"
    VERSION: ClassVar[int] = 2
    AGGREGATE: ClassVar[str] = "concern"


def upcast_concern_received_v1(document: dict[str, Any]) -> dict[str, Any]:
    """concern.received v1 -> v2: the risk box becomes an answer; an unticked box is "not answered"."""
    payload = dict(document.get("payload") or {})
    if "immediate_risk" in payload:
        payload["immediate_risk"] = risk_answer_from_old_boolean(payload["immediate_risk"])
    return {**document, "version": 2, "payload": payload}


registry().register_upcaster("concern.received", 1, upcast_concern_received_v1)


class PersonRef(_Payload):
    """A person the policy names, as routing resolved them."""

    person_id: str
    name: str
    role: str


class CaseOpenedPayload(_Payload):
    case_id: str
    reference: str
    concern_event_id: str
    kind: str
    policy_version: int


class CaseOpened(Event[CaseOpenedPayload]):
    """Routing opened a case for a concern."""

    TYPE: ClassVar[str] = "case.opened"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class DeadlineRef(_Payload):
    kind: str
    due_at: datetime
    description: str = ""


class CaseTriagedPayload(_Payload):
    case_id: str
    reference: str
    category: str
    urgency: Urgency
    rule_ids: list[str]
    policy_version: int
    policy_digest: str = ""
    notify_roles: list[str]
    recipients: list[PersonRef]
    parents: ParentNotification
    parents_reason: str = ""
    deadlines: list[DeadlineRef] = Field(default_factory=list)
    guidance: list[str] = Field(default_factory=list)
    safety_floor: list[str] = Field(default_factory=list, description="safety-floor protections that changed it")
    formal_record_required: bool = Field(default=False, description="the decision must be formally recorded")


class CaseTriagedV1(Event[CaseTriagedPayload]):
    """Routing decided category, urgency and who must act, naming the rules and policy version."""

    # Published as "CaseTriaged": the title is part of the frozen v1 schema.
    model_config = ConfigDict(title="CaseTriaged")

    TYPE: ClassVar[str] = "case.triaged"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


ParentsAtTriage = Literal["inform", "dsl_decides", "must_not_tell", "not_applicable"]


class PossibleSubjectRef(_Payload):
    """Someone who plausibly is the concern's subject: not told, until someone confirms who it is."""

    person_id: str
    name: str
    why: str


class CaseTriagedPayloadV2(CaseTriagedPayload):
    """Version 2: parents "withhold" split in two, and who the concern is (or may be) about."""

    parents: ParentsAtTriage  # type: ignore[assignment]
    subject_person_ids: list[str] = Field(default_factory=list, description="people it is about: never told")
    possible_subjects: list[PossibleSubjectRef] = Field(default_factory=list)
    subject_to_confirm: bool = False
    subject_notes: list[str] = Field(default_factory=list)
    alerts: list[str] = Field(default_factory=list, description="error-level alerts raised by triage")


class CaseTriaged(Event[CaseTriagedPayloadV2]):
    """Routing decided category, urgency and who must act, naming the rules and policy version."""

    TYPE: ClassVar[str] = "case.triaged"
    VERSION: ClassVar[int] = 2
    AGGREGATE: ClassVar[str] = "case"


# Version 1's "withhold" reasons that meant "the DSL decides"; any other withholding was a must-not-tell.
_DSL_DECIDES_REASONS = (
    "No matching rule says whether parents or carers are told",
    "No rule matched this concern: the DSL decides",
    "The DSL decides whether and when parents or carers are told",
)


def upcast_case_triaged_v1(document: dict[str, Any]) -> dict[str, Any]:
    """case.triaged v1 -> v2: "withhold" becomes "dsl_decides" when its reason says so, else "must_not_tell"."""
    payload = dict(document.get("payload") or {})
    if payload.get("parents") == "withhold":
        reason = str(payload.get("parents_reason", ""))
        payload["parents"] = "dsl_decides" if reason.startswith(_DSL_DECIDES_REASONS) else "must_not_tell"
    return {**document, "version": 2, "payload": payload}


registry().register_upcaster("case.triaged", 1, upcast_case_triaged_v1)


# The `reason` of a notification that is a policy-review reminder, not a concern: renderers head it
# "Policy review due: <reference>", where the reference reads like "Social Media Policy v1, due 31 Oct 2022".
POLICY_REVIEW_DUE = "policy_review_due"


class NotificationRequestedPayload(_Payload):
    notification_id: str
    case_id: str
    reference: str
    recipient: PersonRef
    channel: NotificationChannel
    address: str = Field(description="email address, phone number or push subscription id")
    urgency: Urgency
    reason: str = Field(description="why this person: the rule id, or the escalation rung")
    escalation_rung: int = 0


class NotificationRequestedV1(Event[NotificationRequestedPayload]):
    """Someone must be told about a case. Carries no child's name and no concern text."""

    # Published as "NotificationRequested": the title is part of the frozen v1 schema.
    model_config = ConfigDict(title="NotificationRequested")

    TYPE: ClassVar[str] = "notification.requested"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "notification"


class NotificationRequestedPayloadV2(NotificationRequestedPayload):
    """Version 2: a message to a parent or carer carries the school's own words from its policy file."""

    parent_message: ParentMessage | None = Field(
        default=None, description="for a parent or carer: the policy's wording (placeholders checked); else none"
    )


class NotificationRequested(Event[NotificationRequestedPayloadV2]):
    """Someone must be told about a case. Carries no child's name and no concern text."""

    TYPE: ClassVar[str] = "notification.requested"
    VERSION: ClassVar[int] = 2
    AGGREGATE: ClassVar[str] = "notification"


def upcast_notification_requested_v1(document: dict[str, Any]) -> dict[str, Any]:
    """notification.requested v1 -> v2: no parent's wording (v1 carried none)."""
    return {**document, "version": 2}


registry().register_upcaster("notification.requested", 1, upcast_notification_requested_v1)


class NotificationSentPayload(_Payload):
    notification_id: str
    case_id: str
    channel: NotificationChannel
    recipient_person_id: str
    provider_message_id: str = ""


class NotificationSent(Event[NotificationSentPayload]):
    """A notification left through its channel."""

    TYPE: ClassVar[str] = "notification.sent"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "notification"


class NotificationDeliveredPayload(_Payload):
    notification_id: str
    case_id: str
    channel: NotificationChannel
    recipient_person_id: str
    receipt: str = Field(description="what the channel reported: `delivered` (SMS provider), `shown` (push)")
    provider_message_id: str = ""


class NotificationDelivered(Event[NotificationDeliveredPayload]):
    """The channel reported the notification reached the person's device (SMS receipt, push shown). Not for email."""

    TYPE: ClassVar[str] = "notification.delivered"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "notification"


class NotificationFailedPayload(_Payload):
    notification_id: str
    case_id: str
    channel: NotificationChannel
    recipient_person_id: str
    reason: str
    retryable: bool


class NotificationFailed(Event[NotificationFailedPayload]):
    """A notification could not be delivered through its channel."""

    TYPE: ClassVar[str] = "notification.failed"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "notification"


class NotificationAcknowledgedPayload(_Payload):
    notification_id: str
    case_id: str
    acknowledged_by: str = Field(description="person id of whoever acknowledged")


class NotificationAcknowledged(Event[NotificationAcknowledgedPayload]):
    """The recipient acknowledged the notification."""

    TYPE: ClassVar[str] = "notification.acknowledged"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "notification"


class DeadlineSetPayload(_Payload):
    deadline_id: str
    case_id: str
    kind: str = Field(description="acknowledge, lado_consideration, policy_review, ...")
    due_at: datetime
    description: str = ""
    escalation_rung: int = 0


class DeadlineSet(Event[DeadlineSetPayload]):
    """A durable timer was set for a case (or, for policy review, for the school)."""

    TYPE: ClassVar[str] = "deadline.set"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "deadline"


class DeadlineReachedPayload(_Payload):
    deadline_id: str
    case_id: str
    kind: str
    due_at: datetime
    outcome: Literal["escalated", "reminded", "already_met", "nobody_left"]


class DeadlineReached(Event[DeadlineReachedPayload]):
    """A timer fired (exactly once) and what was done about it."""

    TYPE: ClassVar[str] = "deadline.reached"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "deadline"


class CaseEscalatedPayload(_Payload):
    case_id: str
    reference: str
    from_rung: int
    to_rung: int
    recipients: list[PersonRef]
    reason: str


class CaseEscalated(Event[CaseEscalatedPayload]):
    """Nobody acknowledged in time, so the next people in line were told."""

    TYPE: ClassVar[str] = "case.escalated"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class CaseUnacknowledgedPayload(_Payload):
    case_id: str
    reference: str
    urgency: Urgency
    alert_number: int = Field(ge=1, description="1 when the ladder ran out, then one more at each repeat")
    recipients: list[PersonRef] = Field(description="everyone on the ladder and the trust's safeguarding lead")
    repeats_every_minutes: float = Field(gt=0)


class CaseUnacknowledged(Event[CaseUnacknowledgedPayload]):
    """Everyone on the ladder was told and nobody acknowledged: a standing alert, repeated until someone does."""

    TYPE: ClassVar[str] = "case.unacknowledged"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


class OpsDeadLetteredPayload(_Payload):
    consumer: str = Field(description="the durable consumer that gave up on the message")
    original_type: str = Field(description="the event type from the message's subject; never its content")
    stream_sequence: str
    reason_code: str = Field(description="why, in a few words (an exception's name, or 'not an event')")


class OpsDeadLettered(Event[OpsDeadLetteredPayload]):
    """A message was parked on the dead-letter subject: a person has to look at it."""

    TYPE: ClassVar[str] = "ops.dead_lettered"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "ops"


class IntakeQuarantinedPayload(_Payload):
    raw_input_id: str = Field(description="the kept raw input; its bytes stay in intake, never in the event")
    channel: str
    reason_code: str = Field(description="why, as a short code (e.g. 'invalid', 'too_large'); never the content")
    received_at: datetime


class IntakeQuarantined(Event[IntakeQuarantinedPayload]):
    """A raw input could not become a concern and is quarantined: the school's DSL has to look at it."""

    TYPE: ClassVar[str] = "intake.quarantined"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "intake"


class PolicyAdoptedPayload(_Payload):
    version: int
    digest: str
    review_due: str | None = Field(default=None, description="ISO date the policy says it is next reviewed")
    document: dict[str, Any] = Field(description="the policy file as data, so replay can reproduce decisions")


class PolicyAdopted(Event[PolicyAdoptedPayload]):
    """A school adopted a version of its policy; cases routed afterwards name this version."""

    TYPE: ClassVar[str] = "policy.adopted"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "policy"


class PolicyReviewDuePayload(_Payload):
    version: int
    review_due: str
    recipients: list[PersonRef]


class PolicyReviewDue(Event[PolicyReviewDuePayload]):
    """The policy's review date has come: the headteacher and named governor are reminded."""

    TYPE: ClassVar[str] = "policy.review_due"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "policy"


# --- audit checkpoints (published on their own stream, see Subjects.checkpoint) ---


class LedgerCheckpointedPayload(_Payload):
    tree_size: int = Field(ge=0)
    root_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    timestamp: str
    previous: str | None = Field(default=None, description="SHA-256 of the school's previous signed head")
    key_id: str
    signature: str = Field(description="base64 Ed25519 signature over the head's canonical bytes")


class LedgerCheckpointed(Event[LedgerCheckpointedPayload]):
    """Audit signed a Merkle tree head over a school's ledger (RFC 9162 shape), also kept in its witness log."""

    TYPE: ClassVar[str] = "ledger.checkpointed"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "ledger"
