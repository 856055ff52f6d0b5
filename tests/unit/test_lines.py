"""Row lines: keys read off the servers' serializations exactly, or refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl.core.lines import Unreadable, differences, key_of, split, unescape


def escaped(raw: bytes) -> bytes:
    """As the servers escape a line: backslash first, then newline."""
    return raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")


def line(*parts: str | float | None) -> bytes:
    """A serialization as both servers print it: text with '#' doubled, a number as its
    text, NULL as '#0', joined by '#,'."""
    fields = []
    for part in parts:
        if part is None:
            fields.append(b"#0")
        elif isinstance(part, int | float):
            fields.append(str(part).encode())
        else:
            fields.append(part.encode().replace(b"#", b"##"))
    return escaped(b"#,".join(fields))


def test_a_text_and_integer_key_reads_off_its_line() -> None:
    assert key_of(line("Anna", 42, "Math", 1.5), ["text", "integer"]) == ("Anna", 42)
    assert key_of(line(-7), ["integer"]) == (-7,)


@pytest.mark.parametrize(
    "awkward",
    ["", "a#b", "3:x", "line\nbreak", "back\\slash", "\\n", "Zoë 😀", "N", "#", "#,", "##0", "#0"],
)
def test_text_keys_with_separators_escapes_and_unicode(awkward: str) -> None:
    assert key_of(line(awkward, "after", None), ["text", "text"]) == (awkward, "after")


@given(st.lists(st.text(), min_size=1, max_size=3), st.integers())
def test_any_text_key_and_an_integer_round_trip(texts: list[str], number: int) -> None:
    parts = [*texts, number]
    kinds = ["text"] * len(texts) + ["integer"]
    assert key_of(line(*parts, "rest"), kinds) == tuple(parts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "kinds"),
    [
        (b"abc#,1", ["integer"]),  # not a number
        (b"", ["integer"]),  # no number at all
        (b"a#b", ["text"]),  # a '#' neither doubled nor a mark
        (b"ab#", ["text"]),  # a '#' at the end
        (b"\xff\xfe", ["text"]),  # not UTF-8
        (b"a\\t", ["text"]),  # an escape the servers never write
        (b"#0#,1", ["integer"]),  # a NULL key part
        (b"#0#,1", ["text"]),
        (b"a#,#0", ["text", "text"]),
    ],
)
def test_a_line_not_in_its_key_form_is_unreadable(raw: bytes, kinds: list[str]) -> None:
    with pytest.raises(Unreadable):
        key_of(raw, kinds)  # type: ignore[arg-type]


def test_unescape_undoes_exactly_the_servers_escapes() -> None:
    for raw in [b"", b"plain", b"a\\b", b"\\\\n", b"\n\n", b"x\\\ny"]:
        assert unescape(escaped(raw)) == raw


def test_differences_name_the_keys_of_lines_one_side_lacks() -> None:
    source = [line("a", 1), line("b", 2), line("c", 3)]
    target = [line("a", 1), line("b", 9), line("d", 4)]
    found = differences(source, target, ["text"])
    assert sorted(found.source) == [("b",), ("c",)]
    assert sorted(found.target) == [("b",), ("d",)]
    assert sorted(found.keys) == [("b",), ("c",), ("d",)]  # each once


def test_split_reads_no_lines_from_an_empty_range() -> None:
    assert split(None) == [] == split(b"")
    assert split(b"a#,1\nb#,2") == [b"a#,1", b"b#,2"]
