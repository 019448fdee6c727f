"""What every browser test shares: axe-core, installed from npm once per session."""

from __future__ import annotations

import pytest

from tests.support.browser import install_axe


@pytest.fixture(scope="session")
def axe_script(tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core's script, installed from npm into a folder of this test session's own."""
    script, why_not = install_axe(tmp_path_factory.mktemp("axe"))
    if script is None:
        pytest.skip(why_not)
    return script
