"""A throwaway certificate authority and server certificate for 127.0.0.1, for TLS tests on loopback."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from services.bench.loopback import make_certificates


@dataclass(frozen=True)
class LoopbackCertificate:
    ca_file: Path
    server_context: ssl.SSLContext


def loopback_certificate(folder: Path) -> LoopbackCertificate:
    """A certificate naming 127.0.0.1 from a CA made for the test; `ca_file` is what a client must trust."""
    files = make_certificates(folder)
    return LoopbackCertificate(ca_file=files.ca_file, server_context=files.server_context())
