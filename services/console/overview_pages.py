"""The trust overview page and its CSV: figures and what is outstanding, for every school the person may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.access import Page, Principal, may_open, may_see_case
from services.console.overview import Tally, bars, columns, last_months, overview_csv, per_month, tallies, totals
from services.console.overview_duties import (
    DueItem,
    OutstandingAction,
    PolicyReview,
    due_items,
    latest_versions,
    outstanding_actions,
    overdue_per_school,
    policy_reviews,
    school_today,
)
from services.console.reading import case_rows, facts
from services.console.store import deadlines, debrief_actions, policies, scoped
from services.console.web import Context, page, signed_in


@dataclass(frozen=True)
class Overview:
    """Everything the overview shows, for the schools in the person's scope."""

    figures: list[Tally]
    months: dict[tuple[str, str, str], int]
    due: list[DueItem]
    actions: list[OutstandingAction]
    reviews: list[PolicyReview]
    overdue: dict[str, int]


async def _duty_rows(session: AsyncSession) -> tuple[list[Any], list[Any], list[Any]]:
    """Case deadlines, open debrief actions and adopted policy versions (with the policy's timezone)."""
    timezone = policies.c.document["working_days"]["timezone"].astext.label("timezone")
    return (
        list((await session.execute(sa.select(deadlines))).all()),
        list((await session.execute(sa.select(debrief_actions))).all()),
        list(
            (
                await session.execute(
                    sa.select(
                        policies.c.school_id,
                        policies.c.version,
                        policies.c.review_due,
                        policies.c.review_reminded_at,
                        timezone,
                    )
                )
            ).all()
        ),
    )


async def overview_of(context: Context, principal: Principal) -> Overview:
    """The overview for this person: 403 for a role that may not open it."""
    if not may_open(principal, Page.overview):
        raise HTTPException(status_code=403, detail="Your role does not let you open this.")
    async with scoped(context.sessions, school_ids=principal.school_ids) as session:
        rows = await case_rows(session)
        deadline_rows, action_rows, policy_rows = await _duty_rows(session)
    # A case about the viewer is not counted either: a count would tell them it exists.
    counted = [r for r in rows if may_see_case(principal, facts(r), page=Page.overview) == "allowed"]
    now = context.clock()
    latest = latest_versions(policy_rows)
    today: dict[str, date] = {
        school: school_today(getattr(latest.get(school), "timezone", None), now=now) for school in principal.school_ids
    }
    due = due_items(counted, deadline_rows, now=now)
    actions = outstanding_actions(counted, action_rows, today=today)
    reviews = policy_reviews(latest, today=today)
    return Overview(
        figures=tallies(counted, now=now),
        months=per_month(counted),
        due=due,
        actions=actions,
        reviews=reviews,
        overdue=overdue_per_school(principal.school_ids, due=due, actions=actions, reviews=reviews),
    )


def overview_router(context: Context) -> APIRouter:
    router = APIRouter()

    @router.get("/overview")
    async def overview(request: Request) -> Response:
        visit = await signed_in(context, request)
        seen = await overview_of(context, visit.principal)
        by_school, by_kind = totals(seen.figures, by="school_id"), totals(seen.figures, by="kind")
        return page(
            request,
            "overview.html",
            visit=visit,
            seen=seen,
            by_school=by_school,
            by_school_bars=bars({school: t.concerns for school, t in by_school.items()}),
            by_kind_bars=bars({kind: t.concerns for kind, t in by_kind.items()}),
            month_columns=columns(last_months(seen.months, now=context.clock())),
            overdue_bars=bars(seen.overdue),
        )

    @router.get("/overview.csv")
    async def overview_download(request: Request) -> Response:
        visit = await signed_in(context, request)
        seen = await overview_of(context, visit.principal)
        text = overview_csv(seen.figures, months=seen.months, due=seen.due, actions=seen.actions, reviews=seen.reviews)
        disposition = 'attachment; filename="safeguard-overview.csv"'
        return Response(text, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition})

    return router
