"""Reading a policy file: YAML in, a validated `Policy` out, or a `PolicyError` saying what is wrong."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.routing.policy.calendar import BankHolidays
from services.routing.policy.model import Policy
from shared.validation import describe


class PolicyError(ValueError):
    """A policy that cannot be used: unreadable, not YAML, or not a valid policy."""


@cache
def _strict_loader() -> type[Any]:
    """Safe YAML that refuses a key given twice: a second `notify:` would silently replace the first.

    Built on first use: importing PyYAML costs `safeguard route` time it need not spend when it reads an
    already-validated policy from its cache.
    """
    import yaml

    try:
        from yaml import CSafeLoader as base
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        from yaml import SafeLoader as base  # type: ignore[assignment]

    class StrictLoader(base):  # type: ignore[misc,valid-type]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            keys: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                    )
                keys.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def policy_from_data(data: Any, *, bank_holidays: BankHolidays | None = None, source: str = "policy") -> Policy:
    """Validate already-parsed policy data."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a mapping of keys to values, not {type(data).__name__}")
    try:
        return Policy.model_validate(data, context={"bank_holidays": bank_holidays})
    except ValidationError as error:
        count = error.error_count()
        listed = describe(error, separator="\n  ", whole="policy")
        raise PolicyError(f"{source}: {count} problem{'s' if count != 1 else ''}:\n  {listed}") from error


def parse_policy(text: str, *, bank_holidays: BankHolidays | None = None, source: str = "policy") -> Policy:
    """Parse and validate a policy written as YAML text."""
    import yaml

    try:
        data = yaml.load(text, Loader=_strict_loader())
    except yaml.YAMLError as error:
        raise PolicyError(f"{source}: not valid YAML: {error}") from error
    return policy_from_data(data, bank_holidays=bank_holidays, source=source)


def read_policy_text(path: str | Path) -> str:
    """The text of the policy file at `path`, or a `PolicyError` saying why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file: {error.strerror or error}") from error


def load_policy(path: str | Path, *, bank_holidays: BankHolidays | None = None) -> Policy:
    """Read, parse and validate the policy file at `path`."""
    return parse_policy(read_policy_text(path), bank_holidays=bank_holidays, source=str(path))
