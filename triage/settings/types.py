"""Field types the configuration sections share: the strict base model and "a regular expression"."""

from __future__ import annotations

import re
from typing import Annotated, Any

import re2
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


class Model(BaseModel):
    """A configuration section: unknown fields are errors (a typo never passes silently); a field typed
    with a vocabulary enum is checked against it and kept as the plain string."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=True)


def check_regex(pattern: str) -> str:
    """The pattern itself when it compiles; ValueError names what is wrong with it."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern is not a valid regular expression: {exc}") from exc
    return pattern


_QUIET = re2.Options()
_QUIET.log_errors = False  # the error is raised, with the field, not also logged by the C++ library


def check_re2(pattern: str) -> str:
    """The pattern itself when ClickHouse (RE2) can run it too; ValueError names the construct RE2 lacks."""
    check_regex(pattern)
    try:
        re2.compile(pattern, options=_QUIET)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"pattern is evaluated by ClickHouse, whose RE2 engine cannot run it ({reason}); RE2 has no "
            "look-around (?=, ?!, ?<=, ?<!) and no back-references (\\1): match the surrounding text instead, "
            "e.g. 'PO(\\d{10})' for '(?<=PO)\\d{10}'"
        ) from exc
    return pattern


def one_or_many(value: Any) -> Any:
    """`state: blocked` reads as `state: [blocked]`."""
    return [value] if isinstance(value, str) else value


# A regular expression, checked once where the configuration is read.
Regex = Annotated[str, AfterValidator(check_regex)]
# One that ClickHouse evaluates (stitching, step matching in SQL): it must be valid RE2 as well.
SqlRegex = Annotated[str, AfterValidator(check_re2)]
# A list that may be written as a single value.
Names = Annotated[list[str], BeforeValidator(one_or_many)]
