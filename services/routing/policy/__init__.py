"""The school's safeguarding policy as data, and the pure engine that decides who must act on a concern."""

from services.routing.policy.calendar import (
    WorkingCalendar,
    add_working_days,
    add_working_hours,
    due_at,
    england_and_wales_bank_holidays,
)
from services.routing.policy.decide import ACKNOWLEDGE, acknowledge_by, decide, escalation_ladder
from services.routing.policy.decision import (
    Deadline,
    Decision,
    EscalationRung,
    ParentNotification,
    Recipient,
)
from services.routing.policy.floor import NoEligibleRecipientError
from services.routing.policy.load import PolicyError, load_policy, parse_policy, policy_from_data
from services.routing.policy.model import ParentDecision, Person, Policy, Rule, SchoolRole, Urgency

__all__ = [
    "ACKNOWLEDGE",
    "Deadline",
    "Decision",
    "EscalationRung",
    "NoEligibleRecipientError",
    "ParentDecision",
    "ParentNotification",
    "Person",
    "Policy",
    "PolicyError",
    "Recipient",
    "Rule",
    "SchoolRole",
    "Urgency",
    "WorkingCalendar",
    "acknowledge_by",
    "add_working_days",
    "add_working_hours",
    "decide",
    "due_at",
    "england_and_wales_bank_holidays",
    "escalation_ladder",
    "load_policy",
    "parse_policy",
    "policy_from_data",
]
