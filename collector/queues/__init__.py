"""Queue lag: pollers for RabbitMQ, NATS JetStream, Redis Streams and Prometheus exporters, and status.

The small public surface other parts use:

- `run_pollers(runtime, stop)`: the background task that polls every `queues:` entry;
- `poll_once(config, previous=None)`: one blocking poll of one entry, as samples;
- `write_samples(store, samples)`: store samples (pollers and the push API);
- `current_queue_states(store, settings)`: every queue's current state, for the API and correlator.
"""

from __future__ import annotations

from collector.queues.history import recent_samples, write_samples
from collector.queues.polling import poll_once, run_pollers
from collector.queues.sample import QueueSample, with_rates
from collector.queues.state import PUSH_SOURCE, QueueState, current_queue_states
from collector.queues.status import Assessment, Status, Thresholds, Trend, assess

__all__ = [
    "PUSH_SOURCE",
    "Assessment",
    "QueueSample",
    "QueueState",
    "Status",
    "Thresholds",
    "Trend",
    "assess",
    "current_queue_states",
    "poll_once",
    "recent_samples",
    "run_pollers",
    "with_rates",
    "write_samples",
]
