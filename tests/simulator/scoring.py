"""Scoring Triage's answers against the demo's ground truth: stuck-work precision and recall, cause accuracy."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

STUCK = ("stalled", "blocked", "failed")


def read_truth(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def fetch_transactions(api: str, page: int = 1000) -> dict[tuple[str, str], dict[str, Any]]:
    """Every transaction the API lists, following `next` cursors."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": page}
        if cursor:
            params["cursor"] = cursor
        body = httpx.get(f"{api}/api/v1/transactions", params=params, timeout=60).json()
        for item in body["items"]:
            out[(item["workflow"], item["key"])] = item
        cursor = body["next"]
        if not cursor:
            return out


@dataclass
class Score:
    """Counts for one workflow (or all): stuck detection and cause attribution."""

    compared: int = 0
    unsettled: int = 0
    missing: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    cause_right: int = 0
    component_right: int = 0
    state_right: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def cause_accuracy(self) -> float | None:
        return self.cause_right / self.tp if self.tp else None

    @property
    def component_accuracy(self) -> float | None:
        return self.component_right / self.tp if self.tp else None


def score(
    truth: Iterable[dict[str, Any]],
    answers: dict[tuple[str, str], dict[str, Any]],
    origins: tuple[str, ...] = ("live", "backfill"),
) -> dict[str, Score]:
    """Per workflow and '(all)': settled truth lines against the API's items."""
    scores: dict[str, Score] = {}
    for line in truth:
        if line.get("origin", "live") not in origins:
            continue
        for name in (line["workflow"], "(all)"):
            _add(scores.setdefault(name, Score()), line, answers.get((line["workflow"], line["key"])))
    return scores


def _add(s: Score, line: dict[str, Any], item: dict[str, Any] | None) -> None:
    if not line.get("settled", True):
        s.unsettled += 1
        return
    s.compared += 1
    if item is None:
        s.missing += 1
    got_state = item["state"] if item else None
    cause = item["cause"] if item else None
    truly, said = line["state"] in STUCK, got_state in STUCK
    s.state_right += got_state == line["state"]
    if truly and said:
        s.tp += 1
        s.cause_right += bool(cause) and cause["kind"] == line["cause_kind"]
        s.component_right += bool(cause) and cause["component"] == line["component"]
    elif said:
        s.fp += 1
    elif truly:
        s.fn += 1
    wrong_cause = truly and said and (not cause or cause["kind"] != line["cause_kind"])
    if (truly != said or wrong_cause) and len(s.misses) < 20:
        got = f"{got_state} {cause['kind'] if cause else ''} {cause['component'] if cause else ''}"
        s.misses.append(
            f"{line['workflow']} {line['key']}: truth {line['state']} {line['cause_kind']} "
            f"{line['component']} ({line.get('origin')}) | triage {got}"
        )


def table(scores: dict[str, Score]) -> str:
    """A fixed-width table of the scores, one row per workflow."""
    header = (
        f"{'workflow':<26}{'compared':>9}{'unsettled':>10}{'stuck':>7}{'precision':>10}{'recall':>8}"
        f"{'cause acc':>10}{'component':>10}{'state acc':>10}"
    )
    rows = [header, "-" * len(header)]
    for name in sorted(scores, key=lambda n: (n == "(all)", n)):
        s = scores[name]
        rows.append(
            f"{name:<26}{s.compared:>9}{s.unsettled:>10}{s.tp + s.fn:>7}{_pct(s.precision):>10}{_pct(s.recall):>8}"
            f"{_pct(s.cause_accuracy):>10}{_pct(s.component_accuracy):>10}"
            f"{_pct(s.state_right / s.compared if s.compared else None):>10}"
        )
    return "\n".join(rows)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
