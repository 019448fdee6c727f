"""Case commands come from authenticated people: the attacks of issue 7, each refused, recorded, and harmless.

Routing runs as `safeguard up` runs it (its adopted policy, its command subscriber, its acknowledgement consumer);
the attacker is a plain NATS client on the open test bus, which is exactly what the server permissions of a
secured bus would still allow the operator identity to do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from services.cli import app as cli
from services.routing.app import RoutingService
from services.routing.store import case_events, cases, deadlines
from shared.actor_tokens import load_or_create_issuer_key
from shared.contracts.envelope import Actor, utc_now
from shared.contracts.events import NotificationAcknowledged, NotificationAcknowledgedPayload
from shared.db import transaction
from shared.settings import Settings, as_environment
from shared.subjects import Subjects
from tests.support.actors import Issuer
from tests.support.factories import concern_received
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

OPERATOR = Issuer()


@asynccontextmanager
async def routing_with_keys(settings: Settings, keys: Path) -> AsyncIterator[tuple[RoutingService, Settings]]:
    """Routing holding the operator's public key (only the public key: it cannot sign for anybody)."""
    if not (keys / "operator.pub").exists():
        keys.mkdir()
        public = OPERATOR.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (keys / "operator.pub").write_bytes(public)
    settings = settings.model_copy(update={"actor_keys_dir": str(keys)})
    service = RoutingService(settings)
    await service.start()
    await service.runtime.broker.start()
    try:
        yield service, settings
    finally:
        await service.runtime.broker.stop()
        await service.stop()


async def a_triaged_case(service: RoutingService, settings: Settings, js: Any) -> tuple[str, str]:
    """A concern routed for real: (case id, school id), with recipients told and an acknowledgement deadline."""
    concern = concern_received()
    await publish_raw(js, settings, concern)
    [row] = await eventually(
        lambda: rows(service, sa.select(cases).where(cases.c.reference == concern.payload.reference)),
        what="the case opened",
    )
    return row.case_id, row.school_id


async def rows(service: RoutingService, query: Any) -> list[Any]:
    async with transaction(service.runtime.sessions) as session:
        return list((await session.execute(query)).all())


async def history(service: RoutingService, case_id: str) -> list[str]:
    found = await rows(
        service, sa.select(case_events.c.event_type).where(case_events.c.case_id == case_id).order_by("version")
    )
    return [row[0] for row in found]


async def ask(client: Any, settings: Settings, document: dict[str, Any]) -> dict[str, Any]:
    subject = Subjects.from_settings(settings).command("routing", "case")
    reply = await client.request(subject, json.dumps(document).encode(), timeout=10)
    return dict(json.loads(reply.data))


def acknowledge(case_id: str, **more: Any) -> dict[str, Any]:
    return {"command": "acknowledge", "case_id": case_id, "school_id": "st-marks", **more}


async def refusals(js: Any, settings: Settings) -> list[tuple[str, str]]:
    return [(e.payload.code, e.payload.case_id) for e in await stream_events(js, settings, "case.command_refused")]


async def test_commands_without_a_good_assertion_are_refused_recorded_and_change_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    stranger = Issuer()  # the same issuer name, another key: not the operator's signature
    now = utc_now()
    async with (
        routing_with_keys(settings, tmp_path / "keys") as (service, settings),
        jetstream(settings) as (
            client,
            js,
        ),
    ):
        case_id, _ = await a_triaged_case(service, settings, js)
        before = await history(service, case_id)
        claimed = await ask(
            client, settings, acknowledge(case_id, actor={"id": "mallory", "role": "designated_safeguarding_lead"})
        )
        unsigned = await ask(client, settings, acknowledge(case_id))
        expired = await ask(
            client,
            settings,
            acknowledge(case_id, assertion=OPERATOR.token("s-bird", now=now - timedelta(minutes=10))),
        )
        forged = await ask(client, settings, acknowledge(case_id, assertion=stranger.token("s-bird")))
        other_school = await ask(
            client, settings, acknowledge(case_id, assertion=OPERATOR.token("s-bird", school_id="oak-academy"))
        )
        outsider = await ask(client, settings, acknowledge(case_id, assertion=OPERATOR.token("mallory")))
        recorded = await eventually(
            lambda: refusals(js, settings), until=lambda found: len(found) == 6, what="six refusals recorded"
        )
        after = await history(service, case_id)
        pending = await rows(service, sa.select(deadlines.c.status).where(deadlines.c.case_id == case_id))
    codes = [r["code"] for r in (claimed, unsigned, expired, forged, other_school, outsider)]
    assert codes == ["claimed_actor", "unsigned", "expired", "bad_signature", "wrong_school", "not_in_policy"]
    assert not any(r["ok"] for r in (claimed, unsigned, expired, forged, other_school, outsider))
    assert sorted(recorded) == sorted((code, case_id) for code in codes)
    assert after == before == ["case.opened", "case.triaged"]
    assert {status for (status,) in pending} == {"pending"}


async def test_a_replayed_assertion_is_refused(settings: Settings, tmp_path: Path) -> None:
    async with (
        routing_with_keys(settings, tmp_path / "keys") as (service, settings),
        jetstream(settings) as (
            client,
            js,
        ),
    ):
        case_id, _ = await a_triaged_case(service, settings, js)
        token = OPERATOR.token("s-bird")
        first = await ask(client, settings, acknowledge(case_id, assertion=token))
        action = {"command": "record_action", "action": "other", "details": "replayed", "assertion": token}
        replayed = await ask(client, settings, acknowledge(case_id, **action))
        after = await history(service, case_id)
        recorded = await eventually(lambda: refusals(js, settings), what="the replay recorded")
    assert first["ok"] and first["events"] == ["case.acknowledged"]
    assert replayed["code"] == "replayed"
    assert after == ["case.opened", "case.triaged", "case.acknowledged"]
    assert recorded == [("replayed", case_id)]


async def test_a_verified_person_acts_in_their_policy_role_and_may_read_the_case(
    settings: Settings, tmp_path: Path
) -> None:
    async with (
        routing_with_keys(settings, tmp_path / "keys") as (service, settings),
        jetstream(settings) as (
            client,
            js,
        ),
    ):
        case_id, _ = await a_triaged_case(service, settings, js)
        shown = await ask(
            client,
            settings,
            {"command": "show", "case_id": case_id, "school_id": "st-marks", "assertion": OPERATOR.token("s-bird")},
        )
        not_a_lead = await ask(
            client,
            settings,
            {
                "command": "show",
                "case_id": case_id,
                "school_id": "st-marks",
                "assertion": OPERATOR.token("pastoral-lead"),
            },
        )
        done = await ask(client, settings, acknowledge(case_id, assertion=OPERATOR.token("r-crane")))
        acknowledged = await stream_events(js, settings, "case.acknowledged")
    assert shown["ok"] and shown["case"]["status"] == "open"
    assert [step["type"] for step in shown["history"]] == ["case.opened", "case.triaged"]
    assert not_a_lead["code"] == "refused" and "only" in not_a_lead["error"]
    assert done["ok"]
    assert [(e.payload.acknowledged_by, e.payload.role) for e in acknowledged] == [
        ("r-crane", "deputy_designated_safeguarding_lead")
    ]


async def test_a_forged_acknowledgement_is_refused_and_a_real_one_is_recorded(
    settings: Settings, tmp_path: Path
) -> None:
    async with (
        routing_with_keys(settings, tmp_path / "keys") as (service, settings),
        jetstream(settings) as (
            _,
            js,
        ),
    ):
        case_id, school_id = await a_triaged_case(service, settings, js)

        def acknowledged_by(person_id: str) -> NotificationAcknowledged:
            payload = NotificationAcknowledgedPayload(
                notification_id="n-forged", case_id=case_id, acknowledged_by=person_id
            )
            return NotificationAcknowledged.new(  # type: ignore[no-any-return]
                payload,
                school_id=school_id,
                aggregate_id="n-forged",
                actor=Actor(id=person_id, role="designated_safeguarding_lead"),
                occurred_at=utc_now(),
            )

        # mallory is nobody at the school; the pastoral lead is, but was never asked to acknowledge this case.
        for forger in ("mallory", "pastoral-lead"):
            await publish_raw(js, settings, acknowledged_by(forger))
        await publish_raw(js, settings, acknowledged_by("s-bird"))
        await eventually(
            lambda: history(service, case_id),
            until=lambda types: "case.acknowledged" in types,
            what="the genuine acknowledgement",
        )
        recorded = await eventually(
            lambda: refusals(js, settings), until=lambda found: len(found) == 2, what="two refusals"
        )
        acknowledged = await stream_events(js, settings, "case.acknowledged")
    assert recorded == [("not_told", case_id), ("not_told", case_id)]
    assert [e.payload.acknowledged_by for e in acknowledged] == ["s-bird"]


async def test_an_operator_works_a_case_to_closure_with_the_case_commands(settings: Settings, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    load_or_create_issuer_key(keys, issuer="operator")  # as safeguard up does on first start
    env = as_environment(settings)
    env["SAFEGUARD_ACTOR_KEYS_DIR"] = str(keys)
    runner = CliRunner()

    async def case(*arguments: str) -> Any:
        return await asyncio.to_thread(runner.invoke, cli, ["case", *arguments], env=env)

    async with routing_with_keys(settings, keys) as (service, settings), jetstream(settings) as (_, js):
        case_id, _ = await a_triaged_case(service, settings, js)
        who = ["--school", "st-marks", "--as"]
        steps = [
            await case("acknowledge", case_id, *who, "s-bird"),
            await case(
                "decide-parents", case_id, *who, "s-bird", "--decision", "inform", "--reason", "Agreed with the learner"
            ),
            await case(
                "inform-parents",
                case_id,
                *who,
                "s-bird",
                "--name",
                "Pat Example",
                "--relationship",
                "mother",
                "--channel",
                "sms",
                "--address",
                "+44 7700 900123",
            ),
            await case(
                "record-decision",
                case_id,
                *who,
                "s-bird",
                "--kind",
                "not_refer",
                "--decision",
                "No referral",
                "--reasons",
                "Threshold not met",
            ),
            await case(
                "record-outcome",
                case_id,
                *who,
                "s-bird",
                "--outcome",
                "resolved_in_school",
                "--summary",
                "Support in place",
            ),
            await case("close", case_id, *who, "headteacher", "--summary", "Done"),
        ]
        shown = await case("show", case_id, *who, "s-bird")
        refused = await case("close", case_id, *who, "pastoral-lead", "--summary", "Again")
    assert [step.exit_code for step in steps] == [0, 0, 0, 0, 0, 0], [step.output for step in steps]
    assert json.loads(steps[2].output)["events"] == ["case.parents_informed", "notification.requested"]
    assert shown.exit_code == 0 and json.loads(shown.output)["case"]["status"] == "closed"
    assert refused.exit_code == 1 and json.loads(refused.output)["ok"] is False
