"""Every event type Safeguard publishes, one frozen class per version (past-tense names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.concern import ConcernReceivedPayload
from shared.contracts.envelope import Event


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Urgency = Literal["immediate", "high", "medium", "low"]
ParentNotification = Literal["inform", "withhold", "not_applicable"]
NotificationChannel = Literal["push", "email", "sms", "log"]


class ConcernReceived(Event[ConcernReceivedPayload]):
    """Intake accepted a concern and gave it a reference number."""

    TYPE: ClassVar[str] = "concern.received"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "concern"


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


class CaseTriaged(Event[CaseTriagedPayload]):
    """Routing decided category, urgency and who must act, naming the rules and policy version."""

    TYPE: ClassVar[str] = "case.triaged"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "case"


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


class NotificationRequested(Event[NotificationRequestedPayload]):
    """Someone must be told about a case. Carries no child's name and no concern text."""

    TYPE: ClassVar[str] = "notification.requested"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "notification"


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
