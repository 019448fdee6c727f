"""Synthetic form-tool payloads, shaped as Power Automate and an Apps Script post them."""

from __future__ import annotations

from typing import Any


def microsoft_forms_payload(**answers: str) -> dict[str, Any]:
    """A "Get response details" body: answers keyed by question id (the ids of deploy/webhooks/microsoft-forms.yaml)."""
    chosen = {
        "who": "A parent or carer",
        "about": "A learner",
        "kind": "Bullying online",
        "risk": "Not sure",
        "summary": "Unkind comments under a video",
        "details": "Synthetic details",
        **answers,
    }
    return {
        "responder": "parent@example.org",
        "submitDate": "3/2/2026 9:30:00 AM",
        "responseId": 17,
        "r00000000000000000000000000000001": chosen["who"],
        "r00000000000000000000000000000002": "A Parent",
        "r00000000000000000000000000000003": chosen["about"],
        "r00000000000000000000000000000004": chosen["kind"],
        "r00000000000000000000000000000005": chosen["risk"],
        "r00000000000000000000000000000006": chosen["summary"],
        "r00000000000000000000000000000007": chosen["details"],
        "r00000000000000000000000000000008": "TikTok",
    }


def google_forms_payload(**answers: str) -> dict[str, Any]:
    """What the Apps Script in docs/intake.md posts for one response."""
    chosen = {
        "Who are you?": "I would rather stay anonymous",
        "Who is this about?": "A member of staff",
        "What is the concern about?": "A member of staff and social media",
        "Is a child at immediate risk of harm?": "No",
        "In one sentence, what happened?": "A staff account followed learners",
        "Tell us more, in your own words.": "Synthetic details",
        **answers,
    }
    return {
        "formId": "synthetic-form",
        "responseId": "synthetic-response-1",
        "timestamp": "2026-03-02T09:30:00Z",
        "respondentEmail": "",
        "items": [{"title": title, "response": response} for title, response in chosen.items()],
    }
