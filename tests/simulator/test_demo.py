"""`triage demo` as a new user runs it, held to its own ground truth.

The demo runs as a subprocess (its own embedded store, free ports, RabbitMQ when it answers) at
×80 speed. Near the end the test takes the ground truth the moment it is rewritten and, at once,
every transaction the API lists; it prints precision and recall of stuck-work detection and the
accuracy of the cause kind per workflow, and holds each to 0.95. Transactions whose expected
answer changes within a few seconds of the truth's time (`settled: false`) are left out: Triage
answers a few seconds behind, by design.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pika
import pika.exceptions
import pytest

from tests.conftest import free_port
from tests.simulator.scoring import Score, fetch_transactions, read_truth, score, table

ROOT = Path(__file__).resolve().parents[2]
SPEED = 80
DURATION = 75
COMPARE_AT = 52  # seconds after the API answers: 69 simulated minutes, every scripted fault played
TARGET = 0.95


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def answers(api: str) -> bool:
    try:
        return httpx.get(f"{api}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def check(name: str, s: Score) -> list[str]:
    problems = []
    for label, value in (("precision", s.precision), ("recall", s.recall), ("cause accuracy", s.cause_accuracy)):
        if value is None or value < TARGET:
            problems.append(f"{name}: {label} {value} < {TARGET}")
    return problems


@pytest.mark.slow
def test_demo_answers_match_its_ground_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port, otlp_http, otlp_grpc = free_port(), free_port(), free_port()
    truth = tmp_path / "truth.jsonl"
    api = f"http://127.0.0.1:{port}"
    flags = (
        f"--store chdb://{tmp_path / 'data'} --port {port} --otlp-http-port {otlp_http} --otlp-grpc-port {otlp_grpc} "
        f"--duration {DURATION} --speed {SPEED} --truth {truth} --seed 11"
    )
    command = [sys.executable, "-m", "app.cli", "demo", *flags.split()]
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        demo = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stderr, env={**os.environ, "COLUMNS": "160"})
    try:
        wait_for(lambda: answers(api), 60, "the demo's API")
        ready = time.monotonic()
        time.sleep(max(0.0, ready + COMPARE_AT - time.monotonic()))
        written = truth.stat().st_mtime_ns
        wait_for(lambda: truth.stat().st_mtime_ns != written, 10, "the ground truth to be rewritten")
        lines = read_truth(truth)
        items = fetch_transactions(api)
        all_scores = score(lines, items)
        live_scores = score(lines, items, origins=("live",))
        with capsys.disabled():
            print(
                f"\n`triage demo --speed {SPEED}` after {COMPARE_AT}s: {len(lines)} transactions in the truth, "
                f"{len(items)} in the API\nall transactions (history and live):\n{table(all_scores)}\n"
                f"live transactions only:\n{table(live_scores)}"
            )
        problems = []
        for name, s in all_scores.items():
            problems.extend(check(name, s))
            if s.tp + s.fn < 3:
                problems.append(f"{name}: only {s.tp + s.fn} stuck transactions to judge by")
        problems.extend(check("live (all workflows)", live_scores["(all)"]))
        misses = [m for s in (all_scores["(all)"],) for m in s.misses]
        assert not problems, "\n".join(problems + misses)
        assert live_scores["(all)"].tp >= 20, "live faults made work stuck"

        assert demo.wait(DURATION + 60) == 0, err.read_text()[-3000:]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    printed = out.read_text()
    assert "Transactions by workflow and state" in printed and "Top causes of stuck work" in printed
    # How the breach forecasts did against the truth: both of the figures, measured on this run.
    forecasts = re.search(  # the summary wraps at the terminal's width
        r"flagged at risk ≥5 min before breach: (\d+)% of the ([\d,]+) waits that stalled \((\d+)% flagged "
        r"before breach at all\); (\d+)% of the ([\d,]+) flagged completed in time",
        " ".join(printed.split()),
    )
    assert forecasts, printed[-3000:]
    with capsys.disabled():
        print(f"\n{forecasts.group(0)}")
    assert int(forecasts.group(5).replace(",", "")) > 0, "live waits were flagged at risk"
    assert f"{api}/api/v1/transactions?state=stalled&state=blocked&state=failed" in printed
    run = re.search(r"queues (triage-demo-[0-9a-f]+)\.\*", printed)
    if run:  # the run used RabbitMQ: its queues are gone
        connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/"))
        try:
            with pytest.raises(pika.exceptions.ChannelClosedByBroker):
                connection.channel().queue_declare(f"{run.group(1)}.wf.approvals", passive=True)
        finally:
            if connection.is_open:
                connection.close()
