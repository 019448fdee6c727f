"""The validated policy `safeguard route` keeps between runs: served only while the file and the code are unchanged."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.routing import route_command_cache
from services.routing.policy import Policy, PolicyError, decide, load_policy
from services.routing.policy.calendar import BankHolidays
from services.routing.route_command_cache import load_policy_remembered
from shared.contracts.concern import ConcernReceivedPayload

ST_MARKS = Path(__file__).resolve().parents[3] / "deploy" / "policies" / "st-marks.yaml"


def no_bank_holidays(year: int) -> frozenset[date]:
    return frozenset()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    """A copy of St Mark's policy that a test may edit."""
    path = tmp_path / "policy.yaml"
    path.write_text(ST_MARKS.read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources of every policy validated from its file (rather than read back) from now on."""
    validated: list[str] = []
    parse = route_command_cache.parse_policy

    def counting(text: str, **options: Any) -> Policy:
        validated.append(options["source"])
        return parse(text, **options)

    monkeypatch.setattr(route_command_cache, "parse_policy", counting)
    return validated


def remembered(path: Path, cache_dir: Path, *, bank_holidays: BankHolidays = no_bank_holidays) -> Policy:
    return load_policy_remembered(path, cache_dir=cache_dir, bank_holidays=bank_holidays)


def kept_file(cache_dir: Path) -> Path:
    [kept] = (cache_dir / "policies").glob("*.pickle")
    return kept


def test_a_kept_policy_is_read_back_without_validating_and_decides_alike(
    policy_file: Path, cache_dir: Path, validations: list[str], concern: Callable[..., ConcernReceivedPayload]
) -> None:
    first = remembered(policy_file, cache_dir)
    kept = remembered(policy_file, cache_dir)
    assert validations == [str(policy_file)]
    fresh = load_policy(policy_file, bank_holidays=no_bank_holidays)
    assert first == kept == fresh
    assert kept.digest == fresh.digest
    concerns = [
        concern(),
        concern(immediate_risk=True, kind="grooming_or_exploitation"),
        concern(people=[{"role": "headteacher", "involvement": "alleged_perpetrator"}], kind="staff_reputation"),
        concern(received_at="2024-12-24T16:30:00Z", telling_parents_may_increase_risk=True),
    ]
    for one in concerns:
        assert decide(one, kept) == decide(one, fresh)


def test_an_edited_policy_file_is_never_served_stale(
    policy_file: Path, cache_dir: Path, validations: list[str]
) -> None:
    original = policy_file.read_text(encoding="utf-8")
    assert remembered(policy_file, cache_dir).version == 1
    policy_file.write_text(original.replace("\nversion: 1\n", "\nversion: 2\n"), encoding="utf-8")
    assert remembered(policy_file, cache_dir).version == 2
    policy_file.write_text(original, encoding="utf-8")
    assert remembered(policy_file, cache_dir).version == 1
    policy_file.write_text(original + "\nno_such_key: true\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="no_such_key"):
        remembered(policy_file, cache_dir)
    assert len(validations) == 4


def test_a_change_to_the_engine_code_is_never_served_stale(
    policy_file: Path, cache_dir: Path, validations: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = {path.name for path in route_command_cache._source_files()}
    assert {"model.py", "rules.py", "vocabulary.py", "calendar.py", "concern.py", "route_command_cache.py"} <= sources
    engine = tmp_path / "engine.py"
    engine.write_text("VERSION = 1\n", encoding="utf-8")
    real_sources = route_command_cache._source_files
    monkeypatch.setattr(route_command_cache, "_source_files", lambda: [*real_sources(), engine])
    remembered(policy_file, cache_dir)
    remembered(policy_file, cache_dir)
    engine.write_text("VERSION = 2\n", encoding="utf-8")
    remembered(policy_file, cache_dir)
    assert len(validations) == 2


def _truncated(kept: bytes) -> bytes:
    return kept[: len(kept) // 2]


def _key_then(payload: bytes) -> Callable[[bytes], bytes]:
    return lambda kept: kept.split(b"\n", 1)[0] + b"\n" + payload


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda kept: b"", id="empty"),
        pytest.param(lambda kept: b"not a cache file at all", id="not a cache file"),
        pytest.param(_truncated, id="truncated"),
        pytest.param(_key_then(b"\x80\x05garbage"), id="right key, not a pickle"),
        pytest.param(_key_then(pickle.dumps({"version": 1})), id="right key, not a policy"),
        pytest.param(_key_then(b"cno_such_module\nPolicy\n."), id="right key, names a module that does not exist"),
    ],
)
def test_a_damaged_cache_file_is_ignored_and_replaced(
    policy_file: Path, cache_dir: Path, validations: list[str], damage: Callable[[bytes], bytes]
) -> None:
    remembered(policy_file, cache_dir)
    kept = kept_file(cache_dir)
    kept.write_bytes(damage(kept.read_bytes()))
    assert remembered(policy_file, cache_dir) == load_policy(policy_file, bank_holidays=no_bank_holidays)
    remembered(policy_file, cache_dir)
    assert len(validations) == 2


def test_a_cache_file_others_can_write_to_is_not_read(policy_file: Path, cache_dir: Path) -> None:
    remembered(policy_file, cache_dir)
    kept = kept_file(cache_dir)
    # Another policy planted under this file's key shows which one is served.
    planted = load_policy(policy_file).model_copy(update={"version": 7})
    kept.write_bytes(kept.read_bytes().split(b"\n", 1)[0] + b"\n" + pickle.dumps(planted))
    assert remembered(policy_file, cache_dir).version == 7
    kept.chmod(0o666)
    assert remembered(policy_file, cache_dir).version == 1
    assert kept_file(cache_dir).stat().st_mode & 0o777 == 0o600


def test_the_calendar_of_a_kept_policy_reads_this_runs_bank_holidays(policy_file: Path, cache_dir: Path) -> None:
    def on_the_fifth_of_march(year: int) -> frozenset[date]:
        return frozenset({date(year, 3, 5)})

    remembered(policy_file, cache_dir, bank_holidays=no_bank_holidays)
    kept = remembered(policy_file, cache_dir, bank_holidays=on_the_fifth_of_march)
    assert kept.calendar.bank_holidays is on_the_fifth_of_march
    assert not kept.calendar.is_working_day(date(2024, 3, 5))


def test_a_cache_that_cannot_be_written_only_costs_time(policy_file: Path, tmp_path: Path) -> None:
    in_the_way = tmp_path / "not-a-folder"
    in_the_way.write_text("", encoding="utf-8")
    assert remembered(policy_file, in_the_way).school.id == "st-marks"
    assert sorted(tmp_path.iterdir()) == [in_the_way, policy_file]


def test_an_unreadable_policy_file_is_a_policy_error(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        remembered(tmp_path / "missing.yaml", cache_dir)
