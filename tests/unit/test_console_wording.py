"""How the console words a recorded value on a page: no Python reprs (None, True, brackets, quotes)."""

from __future__ import annotations

from services.console.web import TEMPLATES, plain


def test_a_recorded_value_is_shown_in_words() -> None:
    recipient = {"name": "Mr S Bird", "role": "designated_safeguarding_lead", "person_id": "s-bird", "age": None}
    assert plain(None) == "" and plain(True) == "yes" and plain(False) == "no" and plain(3) == "3"
    assert plain(["a", None, "b"]) == "a; b"
    assert plain(recipient) == "name: Mr S Bird, role: designated_safeguarding_lead, person id: s-bird"
    assert plain([recipient, {"kind": "acknowledge"}]).endswith("person id: s-bird; kind: acknowledge")


def test_the_filter_still_escapes_what_it_words() -> None:
    template = TEMPLATES.env.from_string("{{ value | plain }}")
    assert template.render(value={"summary": "<script>x</script>"}) == "summary: &lt;script&gt;x&lt;/script&gt;"
