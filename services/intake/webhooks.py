"""Signed form webhooks, pure: verify HMAC-SHA256 over `timestamp.body`, and map a form's payload to a concern."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from services.intake.door import parse_concern_json
from shared.contracts.concern import ConcernReport

SIGNATURE_PREFIX = "sha256="
_SELECT = re.compile(r"^(?P<key>[^\[\]]*)\[(?P<field>[^=\]]+)=(?P<value>[^\]]*)\]$")


def sign(secret: str, *, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds, as text)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify(
    secret: str | None, *, timestamp: str | None, signature: str | None, body: bytes, now: float, tolerance: float
) -> str | None:
    """None when the signature is good and fresh; otherwise the reason the attempt is refused."""
    if not secret:
        return "no secret is configured for this source"
    if not timestamp or not signature:
        return "missing timestamp or signature header"
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return "the timestamp is not unix seconds"
    if abs(now - int(timestamp)) > tolerance:
        return f"the timestamp is more than {tolerance:.0f} s from now (a replay, or a wrong clock)"
    if not hmac.compare_digest(sign(secret, timestamp=timestamp, body=body).encode(), signature.strip().encode()):
        return "the signature does not match"
    return None


class FieldRule(BaseModel):
    """Where one concern field comes from in the payload, and how its answers translate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str | None = Field(default=None, description="dotted path; `list[field=value]` picks an item")
    values: dict[str, Any] = Field(default_factory=dict, description="answer -> concern value")
    default: Any = None


class FormMapping(BaseModel):
    """How one form tool's payload becomes a concern: concern field (dotted, e.g. `reporter.role`) -> rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    fields: dict[str, FieldRule]
    answers: dict[str, str] = Field(default_factory=dict, description="answer id -> path, kept as text")


def load_mapping(path: Path) -> FormMapping:
    """A mapping from a YAML or JSON file."""
    return FormMapping.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def lookup(payload: Any, path: str) -> Any:
    """The value at a dotted `path` in `payload`, or None; `items[title=Who?]` picks the list item with that field."""
    current = payload
    for segment in path.split("."):
        chosen = _SELECT.match(segment)
        key = chosen.group("key") if chosen else segment
        if key:
            if isinstance(current, dict):
                current = current.get(key)
            elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
                current = current[int(key)]
            else:
                return None
        if chosen:
            if not isinstance(current, list):
                return None
            current = next(
                (
                    item
                    for item in current
                    if isinstance(item, dict) and str(item.get(chosen.group("field"))) == chosen.group("value")
                ),
                None,
            )
    return current


def _place(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = target
    for part, following in pairwise(parts):
        if isinstance(node, list):
            while len(node) <= int(part):
                node.append({})
            node = node[int(part)]
        else:
            node = node.setdefault(part, [] if following.isdigit() else {})
    last = parts[-1]
    if isinstance(node, list):
        while len(node) <= int(last):
            node.append(None)
        node[int(last)] = value
    else:
        node[last] = value


def _value(payload: Any, rule: FieldRule) -> Any:
    found = lookup(payload, rule.path) if rule.path else None
    if isinstance(found, list):  # a multiple-choice answer: the first choice the mapping knows
        found = next((item for item in found if str(item) in rule.values), found[0] if found else None)
    if found is None or found == "":
        return rule.default
    if rule.values:
        return rule.values.get(str(found), rule.default)
    return found


def map_payload(payload: Any, *, mapping: FormMapping) -> dict[str, Any]:
    """The concern, as JSON-shaped data, that a form payload describes (not yet validated)."""
    concern: dict[str, Any] = {}
    for target, rule in mapping.fields.items():
        value = _value(payload, rule)
        if value is not None:
            _place(concern, target, value)
    answers = {key: lookup(payload, path) for key, path in mapping.answers.items()}
    concern["answers"] = {key: str(value) for key, value in answers.items() if value not in (None, "")}
    reporter = concern.get("reporter")
    if isinstance(reporter, dict) and reporter.get("role") == "anonymous":
        concern["reporter"] = {"anonymous": True}  # a reporter who chose anonymity keeps it, whatever else was sent
    return concern


def form_parser(mapping: FormMapping) -> Callable[[bytes], ConcernReport]:
    """A parse function for `Intake.receive`: the payload's JSON, mapped, then validated as a concern."""

    def parse(body: bytes) -> ConcernReport:
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"the form's payload is not JSON ({type(error).__name__})") from None
        return parse_concern_json(json.dumps(map_payload(payload, mapping=mapping)).encode())

    return parse
