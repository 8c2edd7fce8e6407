"""How expected failures name what a client sent, gather several problems, and refuse a name given twice."""

from __future__ import annotations

import pytest

from server.model.errors import MAX_MESSAGE_CHARACTERS, InputProblems, InvalidInput, InvalidInputs, NotFound, quoted
from server.model.names import each_once


def test_quoted_keeps_short_values_and_names_long_ones_by_start_and_length() -> None:
    assert quoted("nightly") == "'nightly'"
    long = quoted("n" * 10_000)
    assert long.startswith("'nnnn") and long.endswith("... (10000 characters)") and len(long) < 100


def test_no_message_is_longer_than_the_cap() -> None:
    error = NotFound("no such thing " + "x" * 50_000, field="id")
    assert len(error.message) <= MAX_MESSAGE_CHARACTERS and error.message.endswith("(shortened)")


def test_problems_are_gathered_one_per_field() -> None:
    problems = InputProblems()
    with problems.check():
        raise InvalidInput("bad cron", field="cron")
    with problems.check():
        pass
    with problems.check():
        raise InvalidInputs(
            [InvalidInput("a", field="retention.keepLast"), InvalidInput("b", field="retention.keepDaily")]
        )
    with pytest.raises(InvalidInputs) as refused:
        problems.raise_any()
    assert [(p.field, p.message) for p in refused.value.each()] == [
        ("cron", "bad cron"),
        ("retention.keepLast", "a"),
        ("retention.keepDaily", "b"),
    ]


def test_one_problem_is_raised_as_itself_and_none_raises_nothing() -> None:
    problems = InputProblems()
    problems.raise_any()
    with problems.check():
        raise InvalidInput("bad zone", field="timeZone")
    with pytest.raises(InvalidInput) as refused:
        problems.raise_any()
    assert refused.value.each() == (refused.value,) and refused.value.field == "timeZone"


def test_other_failures_are_not_gathered() -> None:
    problems = InputProblems()
    with pytest.raises(NotFound), problems.check():
        raise NotFound("gone", field="id")


def test_each_once() -> None:
    assert each_once(["a", "b"], what="source", field="sources") == ("a", "b")
    assert each_once([], what="source", field="sources") == ()
    with pytest.raises(InvalidInput) as refused:
        each_once(["a", "b", "a"], what="source", field="sources")
    assert refused.value.field == "sources" and "source 'a' is named twice" in refused.value.message
