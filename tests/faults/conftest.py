"""Fault tests reuse the end-to-end system fixture: every service as a real process."""

from tests.e2e.conftest import e2e_settings, system

__all__ = ["e2e_settings", "system"]
