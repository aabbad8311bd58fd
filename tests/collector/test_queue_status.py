"""Queue status and rates over sequences of samples: what the ops overview would show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.queues import QueueSample, Thresholds, assess, with_rates

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = Thresholds(window_seconds=300, lag_seconds=300, stale_seconds=45)


def series(
    backlogs: list[int],
    *,
    consumers: int | None = 2,
    step: float = 15,
    out_totals: list[float] | None = None,
    ages: list[float | None] | None = None,
) -> list[QueueSample]:
    """Samples 15 s apart with rates derived as the poller derives them."""
    samples: list[QueueSample] = []
    for i, backlog in enumerate(backlogs):
        sample = QueueSample(
            queue="wf.approvals",
            system="rabbitmq",
            time=T0 + timedelta(seconds=step * i),
            backlog=backlog,
            consumers=consumers,
            out_total=out_totals[i] if out_totals else None,
            oldest_age_seconds=ages[i] if ages else None,
        )
        samples.append(with_rates(sample, samples[-1] if samples else None))
    return samples


def at_end(samples: list[QueueSample], seconds: float = 1) -> datetime:
    return samples[-1].time + timedelta(seconds=seconds)


def test_draining_queue_is_ok_with_time_lag_from_drain_rate() -> None:
    samples = series([1200, 1050, 900, 750])  # 150 consumed every 15 s: 10 msg/s
    result = assess(samples, WINDOW, at_end(samples))
    assert result.status == "ok"
    assert result.trend == "draining"
    assert result.time_lag_seconds == pytest.approx(75.0)  # 750 waiting ÷ 10/s


def test_slow_drain_beyond_threshold_is_lagging() -> None:
    samples = series([5000, 4990, 4980, 4970])  # 10 per 15 s: ~7450 s behind
    result = assess(samples, WINDOW, at_end(samples))
    assert result.status == "lagging"
    assert result.time_lag_seconds == pytest.approx(4970 / (10 / 15))
    assert "threshold 300s" in result.detail


def test_growing_backlog_is_lagging() -> None:
    samples = series([10, 25, 40, 80])
    result = assess(samples, WINDOW, at_end(samples))
    assert result.status == "lagging"
    assert result.trend == "growing"
    assert result.detail == "backlog grew from 10 to 80 in 45s"


def test_two_samples_of_growth_are_not_yet_lagging() -> None:
    samples = series([10, 25])
    assert assess(samples, WINDOW, at_end(samples)).status == "ok"


def test_flat_nonzero_backlog_with_consumers_is_stalled_once_the_window_is_covered() -> None:
    samples = series([300] * 12)  # 165 s of no movement, more than half the 300 s window
    result = assess(samples, WINDOW, at_end(samples))
    assert result.status == "stalled"
    assert result.trend == "flat"
    assert result.time_lag_seconds is None  # not draining: no estimate
    assert result.detail == "300 messages and nothing consumed in 165s"
    early = samples[:4]  # 45 s: too little evidence to call it stalled
    assert assess(early, WINDOW, at_end(early)).status == "ok"


def test_flat_backlog_with_moving_consumer_offsets_is_not_stalled() -> None:
    # Kafka: lag steady at 300 while the group commits 150 offsets per poll: busy, not stuck.
    samples = series([300] * 12, out_totals=[1000 + 150 * i for i in range(12)])
    result = assess(samples, WINDOW, at_end(samples))
    assert result.status == "ok"
    assert result.time_lag_seconds == pytest.approx(30.0)  # 300 ÷ 10/s


def test_no_consumers_with_backlog_is_stopped() -> None:
    samples = series([1204, 1204, 1210], consumers=0)
    result = assess(samples, WINDOW, at_end(samples))
    assert result.status == "stopped"
    assert result.detail == "no consumers while 1210 messages wait"


def test_a_single_sample_with_no_consumers_is_stopped() -> None:
    samples = series([5], consumers=0)
    assert assess(samples, WINDOW, at_end(samples)).status == "stopped"


def test_no_consumers_attached_but_draining_is_not_stopped() -> None:
    # A pull consumer between fetches, or basic.get polling: nobody attached, messages still leave.
    samples = series([100, 80], consumers=0)
    assert assess(samples, WINDOW, at_end(samples)).status == "ok"


def test_empty_queue_without_consumers_is_ok() -> None:
    samples = series([0, 0, 0], consumers=0)
    result = assess(samples, WINDOW, at_end(samples))
    assert (result.status, result.detail, result.time_lag_seconds) == ("ok", "empty", 0.0)


def test_broker_age_wins_over_the_estimate() -> None:
    samples = series([900, 750], ages=[None, 2400.0])
    result = assess(samples, WINDOW, at_end(samples))
    assert result.time_lag_seconds == 2400.0
    assert result.status == "lagging"


def test_failed_poll_is_unknown_with_the_error() -> None:
    samples = series([10, 5])
    down = QueueSample(
        queue="wf.approvals",
        system="rabbitmq",
        time=at_end(samples, 15),
        error="cannot poll rabbitmq at amqp://guest:***@mq:5672/: connection refused",
    )
    result = assess([*samples, down], WINDOW, at_end([down]))
    assert result.status == "unknown"
    assert result.detail == down.error


def test_stale_samples_are_unknown() -> None:
    samples = series([10, 5])
    result = assess(samples, WINDOW, at_end(samples, 120))
    assert result.status == "unknown"
    assert result.detail == "no sample for 120s; is the poller running?"
    never_stale = Thresholds(stale_seconds=None)
    assert assess(samples, never_stale, at_end(samples, 3600)).status == "ok"


def test_no_samples_is_unknown() -> None:
    assert assess([], WINDOW).status == "unknown"


def test_only_the_window_counts() -> None:
    old_growth = series([10, 100, 200, 300] + [300] * 20, out_totals=[float(i * 50) for i in range(24)])
    result = assess(old_growth, WINDOW, at_end(old_growth))
    assert result.trend == "flat"  # the growth left the 300 s window
    assert result.status == "ok"


def test_rates_from_counters_and_from_backlog() -> None:
    first = QueueSample(queue="q", system="kafka", time=T0, backlog=100, in_total=1000.0, out_total=900.0)
    second = QueueSample(
        queue="q",
        system="kafka",
        time=T0 + timedelta(seconds=10),
        backlog=150,
        in_total=1200.0,
        out_total=1050.0,
    )
    derived = with_rates(second, first)
    assert (derived.rate_in, derived.rate_out, derived.rate_source) == (20.0, 15.0, "counters")

    published_only = with_rates(
        QueueSample(queue="q", system="rabbitmq", time=second.time, backlog=150, in_total=1200.0),
        QueueSample(queue="q", system="rabbitmq", time=T0, backlog=100, in_total=1000.0),
    )
    assert (published_only.rate_in, published_only.rate_out) == (20.0, 15.0)  # consumed = 200 - 50 growth

    backlog_only = with_rates(
        QueueSample(queue="q", system="rabbitmq", time=second.time, backlog=60),
        QueueSample(queue="q", system="rabbitmq", time=T0, backlog=100),
    )
    assert (backlog_only.rate_in, backlog_only.rate_out, backlog_only.rate_source) == (0.0, 4.0, "backlog")

    reset = with_rates(
        QueueSample(queue="q", system="kafka", time=second.time, backlog=5, in_total=10.0, out_total=5.0),
        first,
    )
    assert reset.rate_source == "backlog"  # counters went backwards (broker restart): fall back
