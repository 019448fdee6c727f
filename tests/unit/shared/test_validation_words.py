"""One way to put a pydantic ValidationError into words, shared by intake, routing, the policy loader and audit."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from shared.validation import describe, field_path, problems


class Person(BaseModel):
    age: int

    @field_validator("age")
    @classmethod
    def _not_negative(cls, age: int) -> int:
        if age < 0:
            raise ValueError("an age is never negative")
        return age


class Report(BaseModel):
    summary: str
    people: list[Person]


def invalid(document: object) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        Report.model_validate(document)
    return raised.value


@pytest.mark.parametrize(
    ("location", "path"),
    [((), ""), (("summary",), "summary"), (("people", 0, "age"), "people[0].age"), ((3, "then"), "[3].then")],
)
def test_a_location_reads_as_keys_joined_by_dots_and_positions_in_brackets(location: tuple, path: str) -> None:
    assert field_path(location) == path


def test_each_problem_names_its_field_and_says_what_is_wrong_without_pydantics_prefix() -> None:
    error = invalid({"people": [{"age": -3}]})
    assert [(p.field, p.message, p.type) for p in problems(error)] == [
        ("summary", "Field required", "missing"),
        ("people[0].age", "an age is never negative", "value_error"),
    ]


def test_a_description_lists_the_first_problems_and_names_the_whole_document_when_it_is_at_fault() -> None:
    assert describe(invalid({"people": [{"age": -3}]}), limit=1) == "summary: Field required"
    assert describe(invalid([]), whole="(body)").startswith("(body): Input should be")
