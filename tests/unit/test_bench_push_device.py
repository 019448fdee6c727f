"""The bench's push devices, and how a report says which notification path it measured."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from services.bench.load import Reply
from services.bench.loopback import make_certificates
from services.bench.observe import Timings, latencies
from services.bench.push_device import PATHS, new_device_keys, push_capable_people
from services.bench.report import markdown, path_line, tables
from services.launcher.banner import SAMPLE_SCHOOL_ID

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policies" / f"{SAMPLE_SCHOOL_ID}.yaml"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_every_push_capable_member_of_staff_gets_a_device_and_nobody_else() -> None:
    people = push_capable_people(POLICY)
    assert "s-bird" in people  # the DSL, whom the sample concern reaches
    assert "d-hill" not in people  # the named governor takes no push
    assert "kent-lado" not in people and "data-protection-officer" not in people  # external, or email only


def test_a_device_has_a_p256_public_key_and_a_16_byte_auth_secret_as_a_browser_makes_them() -> None:
    p256dh, auth = new_device_keys()
    point = _unb64(p256dh)
    assert len(point) == 65 and point[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # a point on the curve
    assert len(_unb64(auth)) == 16 and "=" not in p256dh + auth
    assert new_device_keys() != (p256dh, auth)


def test_the_server_certificate_is_for_127_0_0_1_signed_by_a_ca_that_signs_nothing_else(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    server = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert files.key_file.stat().st_mode & 0o077 == 0  # the private key is the bench's alone


def path(*, push_device: bool) -> dict[str, Any]:
    """A report's notification path as the bench writes it, with and without a device."""
    if push_device:
        counts: dict[str, int | None] = {"devices": 6, "pushes_received": 3, "push_connections": 2}
        return {"push_device": True, "measured": PATHS[True], **counts, "deliveries": {"push sent": 3}}
    counts = {"devices": 0, "pushes_received": None, "push_connections": None}
    deliveries = {"email sent": 3, "push failed": 3}
    return {"push_device": False, "measured": PATHS[False], **counts, "deliveries": deliveries}


def test_the_report_says_which_notification_path_it_measured() -> None:
    assert path_line({"notification_path": path(push_device=True)}) == (
        f"Notification path: {PATHS[True]}; deliveries: push sent 3; 6 devices, 3 pushes received over 2 connections."
    )
    assert path_line({"notification_path": path(push_device=False)}) == (
        f"Notification path: {PATHS[False]}; deliveries: email sent 3, push failed 3."
    )
    assert path_line({}) == "Notification path: not reported."


def test_the_tables_and_the_markdown_carry_the_path() -> None:
    report: dict[str, Any] = {
        "notification_path": path(push_device=False),
        "saturation": {"concerns": 1},
        "latency": [],
        "cpu_ms_per_concern": {},
        "peak_rss_mb": {},
        "ratios": [],
        "completeness": {"concerns": 1, "complete": 1, "incomplete": []},
    }
    assert tables(report)[0].title == "Notification path"
    assert f"Notification path: {PATHS[False]}" in markdown(report)


def test_latencies_run_from_intake_s_reply_to_each_milestone_a_concern_reached() -> None:
    replies = [Reply("SG-1", sent_at=10.0, replied_at=10.01), Reply("SG-2", sent_at=11.0, replied_at=11.02)]
    reached = {"SG-1": Timings(audit_received=10.015, audit_last=10.11, channel=10.05)}
    summary = latencies(replies, reached)
    assert summary["intake_reply_ms"]["count"] == 2 and summary["intake_reply_ms"]["max"] == 20.0
    assert summary["to_channel_ms"] == {"count": 1, "p50": 40.0, "p95": 40.0, "p99": 40.0, "max": 40.0}
    assert summary["to_audit_received_ms"]["p50"] == 5.0 and summary["to_audit_last_ms"]["p50"] == 100.0
