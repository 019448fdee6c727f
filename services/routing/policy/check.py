"""What `safeguard policy check` warns about in a valid policy: dead rules, overlaps, empty roles, review date."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from itertools import combinations

from services.routing.policy.floor import NEXT_IN_LINE
from services.routing.policy.match import could_both_match, why_never_matches
from services.routing.policy.model import ParentDecision, Policy, Rule, SchoolRole, When
from services.routing.policy.urgency_floor import too_slow
from services.routing.policy.vocabulary import CORE_ROLES


@dataclass(frozen=True)
class Finding:
    """One warning about a policy, naming the rule it concerns when there is one."""

    message: str
    rule_id: str | None = None

    def __str__(self) -> str:
        return f"rule {self.rule_id}: {self.message}" if self.rule_id else self.message


def refusals(policy: Policy, *, text: str = "") -> list[str]:
    """What `policy check` refuses in a policy that loads: acknowledgement times slower than the floor.

    With the file's `text`, each refusal names the line it is about.
    """
    found = []
    for urgency, problem in too_slow(policy):
        line = _line_of(text, section="acknowledge_within", key=urgency.value)
        found.append(f"line {line}: {problem}" if line else problem)
    return found


def _line_of(text: str, *, section: str, key: str) -> int | None:
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"{section}\s*:", line):
            inside = True
        elif inside and re.match(rf"\s+{key}\s*:", line):
            return number
        elif inside and line[:1].isalpha():
            inside = False
    return None


def check_policy(policy: Policy, *, today: date) -> list[Finding]:
    """Every warning for `policy` as of `today` (the policy is already valid, or it would not have loaded)."""
    return [
        *_review_date(policy, today=today),
        *_empty_roles(policy),
        *_never_matching(policy),
        *_doing_nothing(policy),
        *_overlapping(policy),
        *_unusable_preferences(policy),
        *_administrators_told(policy),
        *_no_parent_message(policy),
    ]


@dataclass(frozen=True)
class CheckReport:
    """What `safeguard policy check` says about a policy text: the policy if it loads, and its lines of output."""

    policy: Policy | None
    lines: tuple[str, ...]
    refused: bool
    warnings: int


def check_report(text: str, *, source: str, today: date) -> CheckReport:
    """The whole `policy check` output for `text` (the command line and the console's admin page both show it)."""
    from services.routing.policy.load import PolicyError, parse_policy

    try:
        loaded = parse_policy(text, source=source)
    except PolicyError as error:
        return CheckReport(None, (f"invalid policy: {error}",), refused=True, warnings=0)
    refused = refusals(loaded, text=text)
    if refused:
        # Safeguard would cap these at run time anyway; refusing says so before the school relies on them.
        return CheckReport(loaded, tuple(f"refused: {source}: {p}" for p in refused), refused=True, warnings=0)
    findings = check_policy(loaded, today=today)
    school = loaded.school
    lines = [
        f"{source}: valid policy for {school.name} ({school.id}), version {loaded.version}",
        f"digest {loaded.digest}",
        f"{len(loaded.people)} people, {len(loaded.kinds)} kinds of concern, {len(loaded.rules)} rules:",
    ]
    for rule in loaded.rules:
        lines += [f"  {rule.id} (section {rule.section}): {rule.title}", f"      {describe_rule(rule)}"]
    lines += [f"warning: {finding}" for finding in findings]
    lines.append(f"{len(findings)} warning{'s' if len(findings) != 1 else ''}")
    return CheckReport(loaded, tuple(lines), refused=False, warnings=len(findings))


def _no_parent_message(policy: Policy) -> list[Finding]:
    """Rules may say parents are informed, but without the school's words Safeguard cannot message them."""
    if policy.notifications.parent_message is not None:
        return []
    informing = [rule.id for rule in policy.rules if rule.then.parents is ParentDecision.inform]
    if not informing:
        return []
    return [Finding(f"rules {informing} inform parents, but notifications.parent_message gives no words to send")]


def _review_date(policy: Policy, *, today: date) -> list[Finding]:
    due = policy.source.next_review
    if today <= due:
        return []
    return [Finding(f"the policy was due for review by {due.isoformat()}: {(today - due).days} days overdue")]


def _first_holder_in_line(policy: Policy, role: SchoolRole) -> SchoolRole | None:
    return next((r for r in NEXT_IN_LINE[role] if policy.holders(r)), None)


def _empty_roles(policy: Policy) -> list[Finding]:
    findings = []
    asked = {role for rule in policy.rules for role in rule.then.notify}
    for role in SchoolRole:
        if policy.holders(role) or (role not in CORE_ROLES and role not in asked):
            continue
        instead = _first_holder_in_line(policy, role)
        goes_to = f"goes to the {instead.value} instead" if instead else "reaches nobody"
        findings.append(Finding(f"nobody holds the role {role.value}: what it would receive {goes_to}"))
    return findings


def _unusable_preferences(policy: Policy) -> list[Finding]:
    """A person's `prefer` that the policy never uses, or that names a channel they have no address for."""
    findings = []
    for person in policy.people:
        contact = person.contact
        if not contact.prefer:
            continue
        if not policy.notifications.personal_choice:
            findings.append(Finding(f"{person.id} prefers {list(contact.prefer)} but the policy allows no choice"))
        have = {"push": contact.push, "email": bool(contact.email), "sms": bool(contact.phone)}
        missing = [channel for channel in contact.prefer if not have[channel]]
        if missing:
            findings.append(Finding(f"{person.id} prefers {missing} but has no address for it"))
    return findings


def _administrators_told(policy: Policy) -> list[Finding]:
    """A rule telling the trust administrator: they look after people and policies, and see no case content."""
    return [
        Finding("tells the trust_administrator, who may not open a case in the console", rule.id)
        for rule in policy.rules
        if SchoolRole.trust_administrator in rule.then.notify
    ]


def _never_matching(policy: Policy) -> list[Finding]:
    offered = {p.id for p in policy.platforms}
    findings: list[Finding] = []
    for rule in policy.rules:
        reasons = why_never_matches(rule.when)
        if rule.when.platforms is not None and offered:
            missing = [p for p in rule.when.platforms if p not in offered]
            if len(missing) == len(rule.when.platforms):
                reasons.append(f"none of its platforms {missing} is offered on the report form")
        findings.extend(Finding(f"can never match: {reason}", rule.id) for reason in reasons)
    return findings


def _doing_nothing(policy: Policy) -> list[Finding]:
    findings = []
    for rule in policy.rules:
        then = rule.then
        if not (then.category or then.urgency or then.notify or then.parents or then.deadlines or then.guidance):
            findings.append(
                Finding("matches but changes nothing: it sets no category, urgency, people or text", rule.id)
            )
        if _matches_everything(rule.when):
            findings.append(Finding("has no conditions, so it matches every concern", rule.id))
    return findings


def _matches_everything(when: When) -> bool:
    return not when.model_dump(exclude_none=True)


def _overlapping(policy: Policy) -> list[Finding]:
    categorised: list[Rule] = [r for r in policy.rules if r.then.category]
    findings = []
    for first, second in combinations(categorised, 2):
        if first.then.category == second.then.category or not could_both_match(first.when, second=second.when):
            continue
        findings.append(
            Finding(
                f"overlaps rule {second.id}: one concern can match both, and they set different categories "
                f"({first.then.category} and {second.then.category}); {first.id} comes first, so its "
                "category is used",
                first.id,
            )
        )
    return findings


def describe_rule(rule: Rule) -> str:
    """A one-line summary of a rule for listings: its conditions and what it asks for."""
    conditions = []
    for name, value in rule.when.model_dump(exclude_none=True, mode="json").items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        if isinstance(value, dict):
            shown = " and ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items())
        conditions.append(f"{name.replace('_', ' ')}: {shown}")
    then = rule.then
    asks = [then.category or "(no category)"]
    if then.urgency:
        asks.append(then.urgency.value)
    if then.notify:
        asks.append("tell " + ", ".join(r.value for r in then.notify))
    if then.parents:
        asks.append(f"parents {then.parents.value}")
    return f"when {'; '.join(conditions) or 'always'} -> {'; '.join(asks)}"
