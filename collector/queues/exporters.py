"""Prometheus exporters of queue lag: kafka_exporter, kafka-lag-exporter, Burrow exporters, RabbitMQ.

One endpoint describes many queues. Kafka consumer lag becomes one queue per consumer group and
topic, named `<config name>/<topic>/<group>`; a RabbitMQ queue becomes `<config name>/<queue>`
(`<config name>/<vhost>/<queue>` outside the default vhost).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from collector.queues.sample import PollError, QueueSample, safe_url, utc_now
from triage.settings import Queue

Series = dict[str, list[tuple[dict[str, str], float]]]


@dataclass(frozen=True)
class KafkaDialect:
    """Where one exporter puts consumer lag, offsets and members."""

    lag: str  # per partition, labelled with the group, topic and partition
    group_label: str
    lag_sum: str | None = None  # per group and topic, when the exporter sums for us
    group_offset: str | None = None  # per partition: the group's committed offset
    topic_offset: str | None = None  # per partition: the log end offset
    members: str | None = None  # per group
    lag_seconds: str | None = None  # per partition: time lag


KAFKA_DIALECTS = (
    KafkaDialect(  # danielqsj/kafka_exporter
        lag="kafka_consumergroup_lag",
        group_label="consumergroup",
        lag_sum="kafka_consumergroup_lag_sum",
        group_offset="kafka_consumergroup_current_offset",
        topic_offset="kafka_topic_partition_current_offset",
        members="kafka_consumergroup_members",
    ),
    KafkaDialect(  # seglo/kafka-lag-exporter
        lag="kafka_consumergroup_group_lag",
        group_label="group",
        group_offset="kafka_consumergroup_group_offset",
        topic_offset="kafka_partition_latest_offset",
        lag_seconds="kafka_consumergroup_group_lag_seconds",
    ),
    KafkaDialect(  # Burrow exporters
        lag="kafka_burrow_partition_lag",
        group_label="group",
        group_offset="kafka_burrow_partition_current_offset",
        topic_offset="kafka_burrow_topic_partition_offset",
    ),
)
RABBITMQ_PREFIXES = ("rabbitmq_queue_", "rabbitmq_detailed_queue_")
RECOGNISED = [d.lag for d in KAFKA_DIALECTS] + ["rabbitmq_queue_messages_ready"]


def poll(config: Queue) -> list[QueueSample]:
    """Every queue the exporter at `config.url` describes; raises when it cannot be read."""
    response = httpx.get(config.url or "", timeout=config.timeout, follow_redirects=True)
    response.raise_for_status()
    samples = parse(config, response.text)
    if not samples:
        raise PollError(
            f"no queue metrics at {safe_url(config.url)}: looked for {', '.join(RECOGNISED)}"
            + (f" with queue/topic {config.queue!r}" if config.queue else "")
            + (f" and group {config.group!r}" if config.group else "")
        )
    return samples


def read_series(text: str) -> Series:
    """Prometheus text exposition as {sample name: [(labels, value)]}."""
    series: Series = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[sample.name].append((dict(sample.labels), float(sample.value)))
    return series


def parse(config: Queue, text: str) -> list[QueueSample]:
    """The queues described by one scrape, filtered by the config's `queue` and `group` if set."""
    series = read_series(text)
    now = utc_now()
    found = [*kafka_samples(config, series, now), *rabbitmq_samples(config, series, now)]
    return [
        s
        for s in found
        if (not config.queue or s.destination == config.queue)
        and (not config.group or s.consumer_group == config.group)
    ]


@dataclass
class _GroupTopic:
    lag: float = 0.0
    lag_sum: float | None = None
    group_offset: float | None = None
    lag_seconds: float | None = None
    partitions: set[str] = field(default_factory=set)


def _add(current: float | None, value: float) -> float:
    return value if current is None else current + value


def _per_group_topic(dialect: KafkaDialect, series: Series) -> dict[tuple[str, str], _GroupTopic]:
    found: dict[tuple[str, str], _GroupTopic] = defaultdict(_GroupTopic)

    def rows(name: str | None) -> Iterable[tuple[_GroupTopic, dict[str, str], float]]:
        for labels, value in series.get(name or "", []):
            if dialect.group_label in labels and "topic" in labels:
                yield found[(labels[dialect.group_label], labels["topic"])], labels, value

    for entry, labels, value in rows(dialect.lag):
        entry.lag += max(value, 0.0)  # exporters write -1 for partitions with no committed offset
        entry.partitions.add(labels.get("partition", ""))
    for entry, _, value in rows(dialect.lag_sum):
        entry.lag_sum = max(value, 0.0)
    for entry, _, value in rows(dialect.group_offset):
        if value >= 0:
            entry.group_offset = _add(entry.group_offset, value)
    for entry, _, value in rows(dialect.lag_seconds):
        entry.lag_seconds = max(entry.lag_seconds or 0.0, value)
    return found


def _topic_offsets(dialect: KafkaDialect, series: Series) -> dict[str, float]:
    offsets: dict[str, float] = defaultdict(float)
    for labels, value in series.get(dialect.topic_offset or "", []):
        if "topic" in labels and value >= 0:
            offsets[labels["topic"]] += value
    return offsets


def kafka_samples(config: Queue, series: Series, now: datetime) -> list[QueueSample]:
    """One sample per consumer group and topic, in whichever dialect the exporter speaks."""
    samples: list[QueueSample] = []
    for dialect in KAFKA_DIALECTS:
        if dialect.lag not in series and (dialect.lag_sum or "") not in series:
            continue
        topics = _topic_offsets(dialect, series)
        members = {
            labels[dialect.group_label]: int(value)
            for labels, value in series.get(dialect.members or "", [])
            if dialect.group_label in labels
        }
        for (group, topic), entry in sorted(_per_group_topic(dialect, series).items()):
            samples.append(
                QueueSample(
                    queue=f"{config.name}/{topic}/{group}",
                    system="kafka",
                    time=now,
                    backlog=int(entry.lag_sum if entry.lag_sum is not None else entry.lag),
                    consumers=members.get(group) if dialect.members else None,
                    oldest_age_seconds=entry.lag_seconds,
                    in_total=topics.get(topic),
                    out_total=entry.group_offset,
                    source=config.name,
                    destination=topic,
                    consumer_group=group,
                )
            )
    return samples


def _rabbit_metric(series: Series, suffix: str) -> dict[tuple[str, str], float]:
    values: dict[tuple[str, str], float] = {}
    for prefix in RABBITMQ_PREFIXES:
        for labels, value in series.get(prefix + suffix, []):
            if "queue" in labels:
                values[(labels.get("vhost", "/"), labels["queue"])] = value
    return values


def rabbitmq_samples(config: Queue, series: Series, now: datetime) -> list[QueueSample]:
    """One sample per RabbitMQ queue from rabbitmq_prometheus per-object metrics (or kbudde's exporter)."""
    ready = _rabbit_metric(series, "messages_ready")
    unacked = _rabbit_metric(series, "messages_unacked") or _rabbit_metric(series, "messages_unacknowledged")
    consumers = _rabbit_metric(series, "consumers")
    published = _rabbit_metric(series, "messages_published_total")
    samples = []
    for vhost, queue in sorted(ready):
        in_flight = unacked.get((vhost, queue))
        samples.append(
            QueueSample(
                queue=f"{config.name}/{queue}" if vhost == "/" else f"{config.name}/{vhost}/{queue}",
                system="rabbitmq",
                time=now,
                backlog=int(ready[(vhost, queue)] + (in_flight or 0)),
                unacked=int(in_flight) if in_flight is not None else None,
                consumers=int(consumers[(vhost, queue)]) if (vhost, queue) in consumers else None,
                in_total=published.get((vhost, queue)),
                source=config.name,
                destination=queue,
            )
        )
    return samples
