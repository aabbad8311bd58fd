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


def transaction_hash(workflow: str = "Workflow", key: str = "Key") -> str:
    """The hash of a transaction's (workflow, key) that decides its correlator shard and, on a cluster, the
    ClickHouse shard its business rows are on (triage/store/cluster.py): one expression for both."""
    return f"cityHash64({workflow}, {key})"


class Shard(BaseModel):
    """Shard `index` of `count` (1-based, written `2/4`): the correlator worker that owns the transactions
    whose hash of (workflow, key) falls on it. `1/1` owns every transaction."""

    model_config = ConfigDict(frozen=True)

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, value: Any) -> Any:
        """`2/4` → Shard(index=2, count=4); ValueError says how to write one."""
        if not isinstance(value, str):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
        if not match:
            raise ValueError(f"shard {value!r} is not of the form i/n: write e.g. 2/4 (the second of four shards)")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= count <= 1024 or not 1 <= index <= count:
            raise ValueError(f"shard {value!r}: n must be 1..1024 and i 1..n (shards are numbered from 1), e.g. 2/4")
        return {"index": index, "count": count}

    @property
    def name(self) -> str:
        return f"{self.index}/{self.count}"

    def __str__(self) -> str:
        return self.name

    def owns(self, workflow: str = "Workflow", key: str = "Key") -> str:
        """The SQL condition that a transaction (its workflow and key expressions) is this shard's: the
        same hash of (workflow, key) the cluster schema shards business tables by."""
        if self.count == 1:
            return "1"
        return f"({transaction_hash(workflow, key)} % {self.count} = {self.index - 1})"


# A shard as the configuration writes it: `2/4`.
ShardSpec = Annotated[Shard, BeforeValidator(Shard.parse)]
