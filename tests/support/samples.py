"""A sample of any event class, built from its JSON schema with every optional field filled and a unique token in
every free string, so a test can tell exactly where each string ended up."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from shared.contracts import registry
from shared.contracts.envelope import Event

Token = Callable[[], str]


def tokens(prefix: str = "tok") -> Token:
    """Unique lowercase tokens (they also satisfy the contracts' word and school-id patterns)."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):05d}x"


def current_classes() -> Iterator[type[Event[Any]]]:
    """Every event class a service may publish today (superseded versions are only read)."""
    for (event_type, version), cls in sorted(registry().classes().items()):
        if not registry().superseded(event_type, version) and cls.__module__.startswith("shared.contracts"):
            yield cls


def sample_event(cls: type[Event[Any]], *, token: Token, school_id: str = "st-marks") -> Event[Any]:
    """A valid event of `cls` with every field present."""
    schema = cls.model_json_schema()
    document = _sample(schema, schema, token)
    document.update(type=cls.TYPE, version=cls.VERSION, school_id=school_id, traceparent=None)
    return cls.model_validate(document)


def _sample(schema: Mapping[str, Any], root: Mapping[str, Any], token: Token) -> Any:
    if "$ref" in schema:
        return _sample(root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root, token)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for combined in ("anyOf", "allOf", "oneOf"):
        if combined in schema:
            options = [option for option in schema[combined] if option.get("type") != "null"]
            return _sample(options[0], root, token)
    kind = schema.get("type")
    if kind == "string":
        return _string(schema, token)
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False  # True would make a reporter anonymous, and an anonymous reporter carries no name
    if kind == "array":
        return [_sample(schema.get("items", {"type": "string"}), root, token)]
    if "properties" in schema:
        return {name: _sample(field, root, token) for name, field in schema["properties"].items()}
    extra = schema.get("additionalProperties", True)
    return {token(): token() if extra is True else _sample(extra, root, token)}


def _string(schema: Mapping[str, Any], token: Token) -> str:
    shape = schema.get("format")
    if shape == "date":
        return "2026-01-05"
    if shape == "date-time":
        return "2026-01-05T09:00:00+00:00"
    if shape == "uuid":
        return str(uuid.uuid4())
    if schema.get("pattern") == "^[0-9a-f]{64}$":
        return "ab" * 32
    return token()


def personal_strings(document: Mapping[str, Any]) -> set[str]:
    """Every string (keys of objects too) in the document's personal fields, as the field map finds them."""
    from services.audit.personal import locate

    found: set[str] = set()
    for item in locate(document):
        value: Any = document
        for step in item.path:
            value = value[step]
        found.update(strings_in(value))
    return found


def strings_in(value: Any) -> list[str]:
    """Every string in a JSON value, object keys included."""
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *strings_in(item))]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return [value] if isinstance(value, str) else []
