"""The policy each school has adopted: read from the policy folder, recorded as versioned events.

A changed file must carry a higher `version`; a change without one is refused and the adopted version stays.
Cases keep the version they were routed under (it is on their case.triaged event).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.domain import ROUTING, deadline_event
from services.routing.policy.load import load_policy, policy_from_data
from services.routing.policy.model import Policy
from services.routing.store import AdoptedPolicy, Deadlines, PolicyVersions, SqlPolicyVersions
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import PolicyAdopted, PolicyAdoptedPayload

log = logging.getLogger(__name__)
POLICY_REVIEW = "policy_review"


class UnknownSchool(LookupError):
    """No policy has been adopted for this school."""


def policy_case_id(school_id: str) -> str:
    """Timers about the policy itself hang off this id, as a case's hang off its case id."""
    return f"policy:{school_id}"


def policies_in(folder: str | Path) -> list[tuple[str, Policy]]:
    """Every policy file in `folder`, validated; the file must be named after its school id."""
    loaded = []
    for path in sorted(Path(folder).glob("*.yaml")):
        policy = load_policy(path)
        if policy.school.id != path.stem:
            raise ValueError(f"{path.name} holds the policy of {policy.school.id!r}: name it {policy.school.id}.yaml")
        loaded.append((path.name, policy))
    return loaded


class PolicyBook:
    """The current policy per school, and every version a case was routed under."""

    def __init__(self, versions: PolicyVersions | None = None) -> None:
        self._versions: PolicyVersions = versions or SqlPolicyVersions()
        self._current: dict[str, Policy] = {}
        self._earlier: dict[tuple[str, int], Policy] = {}

    def current(self, school_id: str) -> Policy:
        try:
            return self._current[school_id]
        except KeyError:
            raise UnknownSchool(f"no policy adopted for school {school_id!r}") from None

    def schools(self) -> list[str]:
        return sorted(self._current)

    def adopted(self, school_id: str) -> bool:
        """Whether the school has an adopted policy (the consumer edge parks events of any other school)."""
        return school_id in self._current

    async def version(self, school_id: str, version: int, *, session: AsyncSession) -> Policy:
        """The policy a case was routed under: the current one, or an earlier adopted version."""
        current = self.current(school_id)
        if current.version == version:
            return current
        key = (school_id, version)
        if key not in self._earlier:
            adopted = await self._versions.get(session, school_id=school_id, version=version)
            if adopted is None:
                raise UnknownSchool(f"school {school_id!r} never adopted policy version {version}")
            self._earlier[key] = policy_from_data(adopted.document, source=f"{school_id} v{version}")
        return self._earlier[key]

    async def adopt_folder(
        self, folder: str | Path, *, session: AsyncSession, deadlines: Deadlines, now: datetime
    ) -> list[Event[Any]]:
        """Adopt every `<school_id>.yaml` in `folder` that is new or a higher version; return the events."""
        events: list[Event[Any]] = []
        for name, policy in await asyncio.to_thread(policies_in, folder):
            events += await self.adopt(policy, session=session, deadlines=deadlines, now=now, source=name)
        return events

    async def not_adoptable(self, policy: Policy, *, session: AsyncSession) -> str | None:
        """Why `policy` would not be adopted as a new version (the same content, or no higher version), if so."""
        latest = await self._versions.latest(session, school_id=policy.school.id)
        if latest is None:
            return None
        if latest.digest == policy.digest:
            return f"version {latest.version} with exactly this content is already adopted"
        if policy.version <= latest.version:
            return (
                f"this changes the policy without raising its version: version {latest.version} is adopted, "
                f"so the new one must say version {latest.version + 1} or higher"
            )
        return None

    async def adopt(
        self,
        policy: Policy,
        *,
        session: AsyncSession,
        deadlines: Deadlines,
        now: datetime,
        source: str = "",
        actor: Actor = ROUTING,
    ) -> list[Event[Any]]:
        """Record `policy` as the school's current version if it is new; keep the adopted one otherwise.

        `actor` is who adopted it: routing itself for the policy folder, or the verified person who asked.
        """
        school_id = policy.school.id
        latest = await self._versions.latest(session, school_id=school_id)
        if latest is not None and latest.digest == policy.digest:
            self._current[school_id] = policy
            return []
        if latest is not None and policy.version <= latest.version:
            log.error(
                "%s changed without a higher version (file v%d, adopted v%d): keeping v%d until the version is raised",
                source or school_id,
                policy.version,
                latest.version,
                latest.version,
            )
            self._current[school_id] = policy_from_data(latest.document, source=f"{school_id} v{latest.version}")
            return []
        document = policy.model_dump(mode="json")
        await self._versions.record(
            session, AdoptedPolicy(school_id, policy.version, policy.digest, document), adopted_at=now
        )
        self._current[school_id] = policy
        review_due = policy.source.next_review
        adopted = PolicyAdopted.new(
            PolicyAdoptedPayload(
                version=policy.version, digest=policy.digest, review_due=review_due.isoformat(), document=document
            ),
            school_id=school_id,
            aggregate_id=f"{school_id}:v{policy.version}",
            actor=actor,
            occurred_at=now,
        )
        due = datetime.combine(review_due, time(9, 0), tzinfo=policy.calendar.zone).astimezone(UTC)
        review = deadline_event(
            case_id=policy_case_id(school_id),
            kind=POLICY_REVIEW,
            due_at=due,
            description=f"Review the policy (version {policy.version}); it was due for review on {review_due}.",
            rung=policy.version,
            school_id=school_id,
            cause=adopted,
            now=now,
        )
        await deadlines.set(
            session,
            deadline_id=review.payload.deadline_id,
            school_id=school_id,
            case_id=policy_case_id(school_id),
            kind=POLICY_REVIEW,
            due_at=due,
            detail={
                "version": policy.version,
                "review_due": review_due.isoformat(),
                "cause": review.model_dump(mode="json"),
            },
        )
        log.info("adopted policy v%d for %s (%s)", policy.version, school_id, policy.digest)
        return [adopted, review]
