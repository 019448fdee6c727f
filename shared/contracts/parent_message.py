"""What a school says to a parent or carer, per channel: its own words from its policy file, with three placeholders.

A parent's message may use only `{school_name}`, `{reference}` and `{contact}` (how to reach the school). No
placeholder reaches the concern, its category, the people in it or the staff told about it, so no template
can put staff-only detail in front of a parent. The same check runs when a policy file is loaded
(`safeguard policy check` refuses the file) and when a request carrying the words is parsed.
"""

from __future__ import annotations

import string
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

PARENT_PLACEHOLDERS = frozenset({"school_name", "reference", "contact"})


def placeholders(text: str) -> set[str]:
    """The placeholders `text` uses; ValueError for a malformed one, a conversion, a format spec or an index."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as error:
        raise ValueError(f"malformed placeholder in {text!r}: {error}") from error
    used = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} must be a plain name, without !conversion or :format")
        used.add(name)
    return used


def safe_parent_words(text: str) -> str:
    """Refuse a parent's template that reaches for anything but the school's name, the reference and the contact."""
    extra = placeholders(text) - PARENT_PLACEHOLDERS
    if extra:
        raise ValueError(
            f"a parent's message may use only {sorted(PARENT_PLACEHOLDERS)}; not {sorted(extra)} "
            "(nothing about the concern, the child or the staff may reach a parent)"
        )
    return text


def no_placeholders(text: str) -> str:
    """A literal the school writes (its name, its contact line): no braces, so it cannot smuggle a placeholder."""
    if "{" in text or "}" in text:
        raise ValueError("this text is used as it is: it may not contain { or }")
    return text


ParentWords = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(safe_parent_words)]
AsWritten = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(no_placeholders)]


class ParentMessage(BaseModel):
    """A school's words to parents on every channel, and the two literals they may quote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    school_name: AsWritten
    contact: AsWritten = Field(
        description="how to reach the school, e.g. 'Please call the school office on 01632 960000'"
    )
    email_subject: ParentWords
    email_body: ParentWords
    sms: ParentWords
    push_title: ParentWords
    push_body: ParentWords

    def rendered(self, *, reference: str) -> dict[str, str]:
        """Every channel's text with the placeholders filled: the only facts a parent's message can carry."""
        facts = {"school_name": self.school_name, "reference": reference, "contact": self.contact}
        texts = ("email_subject", "email_body", "sms", "push_title", "push_body")
        return {name: str(getattr(self, name)).format(**facts) for name in texts}
