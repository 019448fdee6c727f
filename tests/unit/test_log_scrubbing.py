"""A traceback in a service's log keeps its frames and exception types, never what the exception repeats."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from shared.contracts.concern import ConcernReport
from shared.logs import ScrubbingFormatter

MARKER = "Ottoline Marchbanks"


def test_a_validation_error_in_a_traceback_does_not_repeat_the_concern() -> None:
    try:
        try:
            ConcernReport.model_validate({"summary": MARKER, "reporter": {"name": MARKER, "role": "nobody"}})
        except ValidationError as invalid:
            raise RuntimeError(f"could not take the report of {MARKER}") from invalid
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, exc_info=sys.exc_info())
    text = ScrubbingFormatter("%(message)s").format(record)
    assert MARKER not in text
    assert "ValidationError: (message withheld" in text and "RuntimeError: (message withheld" in text
    assert "test_log_scrubbing.py" in text  # the frames are still there to debug with
