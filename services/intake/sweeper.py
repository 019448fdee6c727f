"""Finishing raw inputs left `received` (a crash between keeping and parsing): parsed again, accepted or quarantined."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from services.intake.door import parse_concern_json, refuse
from services.intake.email_in import email_parser
from services.intake.handlers import Accepted, Intake
from shared.contracts.concern import Channel, ConcernReport

log = logging.getLogger(__name__)

Parser = Callable[[bytes], ConcernReport]

# A web form's files and a webhook's source are not in its raw input: a person reads those from the kept bytes.
UNFINISHABLE = refuse("interrupted before it was read; kept for a person to read", code="interrupted")


def channel_parsers(*, own_domains: frozenset[str]) -> dict[Channel, Parser]:
    """The parse function each channel's raw bytes can be read again with."""
    return {Channel.json_api: parse_concern_json, Channel.email: email_parser(own_domains=own_domains)}


@dataclass
class Sweeper:
    """One sweep finishes every raw input stuck longer than `stuck_after`, exactly as `Intake.receive` would."""

    intake: Intake
    parsers: Mapping[Channel, Parser]
    stuck_after: timedelta
    batch: int = 100

    async def sweep(self) -> int:
        """Finish the stuck raw inputs found now; returns how many were finished."""
        async with self.intake.uow.begin() as work:
            stuck = await self.intake.store.stuck(
                work.session, before=self.intake.clock() - self.stuck_after, limit=self.batch
            )
        for raw in stuck:
            channel = Channel(raw.channel)
            try:
                outcome = await self.intake.finish(
                    raw.raw_input_id,
                    raw.body,
                    school_id=raw.school_id,
                    channel=channel,
                    parse=self.parsers.get(channel, UNFINISHABLE),
                    received_at=raw.received_at,
                )
            except Exception:  # one input that cannot be finished must not hold up the others
                log.exception("raw input %s could not be finished; will try again", raw.raw_input_id)
                continue
            verdict = "accepted" if isinstance(outcome, Accepted) else "quarantined"
            log.warning("raw input %s was left unfinished; now %s", raw.raw_input_id, verdict)
        return len(stuck)
