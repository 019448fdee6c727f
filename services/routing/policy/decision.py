"""What the policy engine decides about one concern: frozen, plain data the routing service publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.routing.policy.model import ContactChannels, ParentDecision, SchoolRole, Urgency


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Recipient(_Frozen):
    """A person who must be told, in the role they are told in."""

    person_id: str
    name: str
    role: SchoolRole
    channels: ContactChannels


class ParentNotification(_Frozen):
    """Whether the child's parents or carers are informed, and why."""

    decision: ParentDecision
    reason: str


class PossibleSubjectRef(_Frozen):
    """Someone who plausibly is the concern's subject: not told, until someone confirms who it is."""

    person_id: str
    name: str
    why: str


class Deadline(_Frozen):
    """Something that must be done by `due_at` (in the school's timezone)."""

    kind: str
    due_at: datetime
    description: str = ""
    rule_id: str | None = Field(default=None, description="the rule that set it; None for acknowledgement")


class Decision(_Frozen):
    """Category, urgency, who must act and by when, for one concern under one version of the policy."""

    reference: str
    school_id: str
    category: str
    urgency: Urgency
    notify_roles: tuple[SchoolRole, ...]
    recipients: tuple[Recipient, ...]
    parent_notification: ParentNotification
    deadlines: tuple[Deadline, ...]
    guidance: tuple[str, ...]
    rule_ids: tuple[str, ...]
    safety_floor: tuple[str, ...] = Field(description="the safety-floor protections that changed the outcome")
    subject_person_ids: tuple[str, ...] = Field(description="people the concern is about: never told")
    possible_subjects: tuple[PossibleSubjectRef, ...] = Field(
        default=(), description="people who plausibly are the subject: not told either"
    )
    subject_to_confirm: bool = Field(default=False, description="who the concern is about must be confirmed")
    subject_notes: tuple[str, ...] = Field(default=(), description="what about the subject could not be resolved")
    alerts: tuple[str, ...] = Field(default=(), description="error-level alerts for the people who run the service")
    formal_record_required: bool = False
    policy_version: int
    policy_digest: str
    policy_review_overdue: bool

    @property
    def excluded_person_ids(self) -> frozenset[str]:
        """Everyone never to be told: the subjects and the possible subjects."""
        return frozenset(self.subject_person_ids) | {p.person_id for p in self.possible_subjects}

    def summary(self) -> dict[str, Any]:
        """The decision as the `route` command prints it: plain JSON-ready values."""
        body = self.model_dump(mode="json")
        return {
            "reference": body["reference"],
            "rule_ids": body["rule_ids"],
            "category": body["category"],
            "urgency": body["urgency"],
            "notify": body["notify_roles"],
            "parents": body["parent_notification"]["decision"],
            "parents_reason": body["parent_notification"]["reason"],
            "recipients": body["recipients"],
            "deadlines": body["deadlines"],
            "guidance": body["guidance"],
            "safety_floor": body["safety_floor"],
            "subjects": body["subject_person_ids"],
            "possible_subjects": body["possible_subjects"],
            "subject_to_confirm": body["subject_to_confirm"],
            "subject_notes": body["subject_notes"],
            "alerts": body["alerts"],
            "formal_record_required": body["formal_record_required"],
            "policy_version": body["policy_version"],
            "policy_digest": body["policy_digest"],
            "policy_review_overdue": body["policy_review_overdue"],
        }


class EscalationRung(_Frozen):
    """One step of the escalation ladder: who is told next when nobody has acknowledged."""

    rung: int = Field(ge=1)
    role: SchoolRole
    recipients: tuple[Recipient, ...] = Field(min_length=1)
