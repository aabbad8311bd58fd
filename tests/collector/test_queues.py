"""Queue lag against the real brokers on this machine, real exporter output, and the live API.

RabbitMQ 127.0.0.1:5672, NATS JetStream 127.0.0.1:4222 and Redis 127.0.0.1:6379 must be running;
every test makes uniquely named queues and streams and removes them afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pika
import pytest
import redis

from collector.queues import QueueSample, assess, current_queue_states, poll_once, write_samples
from tests.conftest import LiveServer, free_port, server_settings
from triage.errors import ConfigError
from triage.settings import Queue, Settings, load_settings
from triage.store import Store

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
NATS = "nats://127.0.0.1:4222"
REDIS = "redis://127.0.0.1:6379/0"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def queue_config(**fields: Any) -> Queue:
    return Queue.model_validate({"interval": "1s", "timeout": "3s", **fields})


def poll_one(config: Queue, previous: QueueSample | None = None) -> QueueSample:
    samples = poll_once(config, {previous.queue: previous} if previous else None)
    assert len(samples) == 1, samples
    return samples[0]


def status_of(*samples: QueueSample) -> str:
    return assess(samples).status


# --- RabbitMQ ----------------------------------------------------------------------------------


@pytest.fixture
def rabbit_queue() -> Iterator[Callable[[int], str]]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    channel.confirm_delivery()
    names: list[str] = []

    def make(messages: int) -> str:
        name = unique("triage.test.")
        channel.queue_declare(name)
        for i in range(messages):
            channel.basic_publish("", name, f"approval {i}".encode())
        names.append(name)
        return name

    yield make
    for name in names:
        channel.queue_delete(name)
    connection.close()


def test_rabbitmq_backlog_consumers_and_status(rabbit_queue: Callable[[int], str]) -> None:
    name = rabbit_queue(20)
    config = queue_config(name="approvals", kind="rabbitmq", url=AMQP, queue=name)

    before = poll_one(config)
    assert (before.backlog, before.consumers, before.error) == (20, 0, "")
    assert status_of(before) == "stopped"

    # A worker takes messages one at a time: 4 acknowledged, the 5th in hand.
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        for delivered, (method, _, _) in enumerate(channel.consume(name, inactivity_timeout=5), start=1):
            assert method is not None, "RabbitMQ delivered nothing within 5 s"
            if delivered == 5:
                break
            channel.basic_ack(method.delivery_tag)
        after = poll_one(config, before)
    finally:
        connection.close()

    assert (after.backlog, after.consumers) == (15, 1)  # AMQP counts ready messages only
    assert after.rate_out is not None and after.rate_out > 0
    assert after.rate_source == "backlog"
    assert status_of(before, after) == "ok"


def test_rabbitmq_missing_queue_is_unknown_with_the_reason() -> None:
    sample = poll_one(queue_config(name="approvals", kind="rabbitmq", url=AMQP, queue=unique("absent.")))
    assert sample.backlog is None
    assert "NOT_FOUND" in sample.error and "cannot poll rabbitmq at amqp://guest:***@127.0.0.1:5672/" in sample.error
    assert status_of(sample) == "unknown"


class _Management(http.server.BaseHTTPRequestHandler):
    """A stand-in for the management plugin (not enabled on this machine): the documented queue object."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        expected = "Basic " + base64.b64encode(b"ops:s3cret").decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        if self.path != "/api/queues/erp/wf.approvals":
            self.send_response(404)
            self.end_headers()
            return
        body = {
            "name": "wf.approvals",
            "vhost": "erp",
            "messages": 1204,
            "messages_ready": 1190,
            "messages_unacknowledged": 14,
            "consumers": 3,
            "head_message_timestamp": int(time.time()) - 600,
            "message_stats": {
                "publish": 88412,
                "publish_details": {"rate": 4.2},
                "ack": 87208,
                "ack_details": {"rate": 3.9},
                "deliver_get": 87300,
                "deliver_get_details": {"rate": 3.9},
            },
        }
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def test_rabbitmq_management_api_gives_rates_and_age() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Management)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    management = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        config = queue_config(
            name="approvals",
            kind="rabbitmq",
            url="amqp://ops:s3cret@127.0.0.1:5672/erp",
            queue="wf.approvals",
            management_url=management,
        )
        sample = poll_one(config)
        missing = poll_one(config.model_copy(update={"queue": "wf.gone"}))
    finally:
        server.shutdown()
        server.server_close()
    assert (sample.backlog, sample.unacked, sample.consumers) == (1204, 14, 3)
    assert (sample.rate_in, sample.rate_out, sample.rate_source) == (4.2, 3.9, "broker")
    assert sample.oldest_age_seconds == pytest.approx(600, abs=5)
    result = assess([sample])
    assert (result.status, result.time_lag_seconds) == ("lagging", sample.oldest_age_seconds)
    assert "queue 'wf.gone' not found in vhost 'erp'" in missing.error


# --- NATS JetStream ----------------------------------------------------------------------------


async def _nats_setup(stream: str, messages: int) -> None:
    client = await nats.connect(NATS)
    js = client.jetstream()
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    for i in range(messages):
        await js.publish(f"{stream.lower()}.po", f"supplier event {i}".encode())
    await js.add_consumer(stream, durable_name="erp", ack_policy="explicit")
    await client.close()


async def _nats_consume(stream: str, count: int) -> None:
    client = await nats.connect(NATS)
    js = client.jetstream()
    subscription = await js.pull_subscribe(f"{stream.lower()}.>", durable="erp", stream=stream)
    for message in await subscription.fetch(count, timeout=5):
        await message.ack_sync()
    await client.close()


async def _nats_delete(stream: str) -> None:
    client = await nats.connect(NATS)
    await client.jetstream().delete_stream(stream)
    await client.close()


@pytest.fixture
def nats_stream() -> Iterator[Callable[[int], str]]:
    streams: list[str] = []

    def make(messages: int) -> str:
        stream = unique("TRIAGE_TEST_")
        asyncio.run(_nats_setup(stream, messages))
        streams.append(stream)
        return stream

    yield make
    for stream in streams:
        asyncio.run(_nats_delete(stream))


def test_nats_jetstream_backlog_rates_and_status(nats_stream: Callable[[int], str]) -> None:
    stream = nats_stream(12)
    config = queue_config(name="supplier-events", kind="nats", url=NATS, stream=stream, consumer="erp")

    before = poll_one(config)
    assert (before.backlog, before.unacked, before.consumers, before.error) == (12, 0, 0, "")
    assert before.oldest_age_seconds is not None and 0 <= before.oldest_age_seconds < 30
    assert status_of(before) == "stopped"

    asyncio.run(_nats_consume(stream, 5))
    after = poll_one(config, before)
    assert (after.backlog, after.unacked) == (7, 0)
    assert after.rate_out is not None and after.rate_out > 0
    assert after.rate_source == "counters"  # from the consumer's delivered stream sequence
    assert status_of(before, after) == "ok"  # no pull waiting right now, but it is consuming


def test_nats_stream_without_consumer_counts_stream_messages(nats_stream: Callable[[int], str]) -> None:
    stream = nats_stream(4)
    sample = poll_one(queue_config(name="work", kind="nats", url=NATS, stream=stream))
    assert (sample.backlog, sample.consumers) == (4, 1)
    assert status_of(sample) == "ok"


# --- Redis Streams -----------------------------------------------------------------------------


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS, decode_responses=True)
    yield client
    stale = list(client.scan_iter(match=f"{REDIS_PREFIX}*"))
    if stale:
        client.delete(*stale)
    client.close()


REDIS_PREFIX = f"triage:test:{uuid.uuid4().hex[:8]}:"  # this run's keys, removed by the fixture


def _redis_stream(client: redis.Redis, messages: int) -> str:
    stream = unique(REDIS_PREFIX)
    for i in range(messages):
        client.xadd(stream, {"invoice": f"INV-{i}"})
    client.xgroup_create(stream, "erp-sync", id="0")
    return stream


def test_redis_stream_group_backlog_rates_and_status(redis_client: redis.Redis) -> None:
    stream = _redis_stream(redis_client, 10)
    config = queue_config(name="invoices", kind="redis", url=REDIS, stream=stream, group="erp-sync")

    before = poll_one(config)
    assert (before.backlog, before.unacked, before.consumers, before.error) == (10, 0, 0, "")
    assert before.oldest_age_seconds is not None and 0 <= before.oldest_age_seconds < 30
    assert status_of(before) == "stopped"

    read = redis_client.xreadgroup("erp-sync", "worker-1", {stream: ">"}, count=4)
    ids = [entry_id for entry_id, _ in read[0][1]]
    assert redis_client.xack(stream, "erp-sync", *ids) == 4
    after = poll_one(config, before)
    assert (after.backlog, after.unacked, after.consumers) == (6, 0, 1)
    assert after.rate_out is not None and after.rate_out > 0
    assert status_of(before, after) == "ok"

    redis_client.xreadgroup("erp-sync", "worker-1", {stream: ">"}, count=2)  # read, not yet acked
    in_flight = poll_one(config, after)
    assert (in_flight.backlog, in_flight.unacked) == (6, 2)


def test_redis_wrong_group_names_the_groups(redis_client: redis.Redis) -> None:
    stream = _redis_stream(redis_client, 1)
    sample = poll_one(queue_config(name="invoices", kind="redis", url=REDIS, stream=stream, group="nope"))
    assert status_of(sample) == "unknown"
    assert "has no consumer group 'nope' (groups: erp-sync)" in sample.error


# --- Prometheus exporters (real outputs served over HTTP) --------------------------------------


@pytest.fixture(scope="module")
def exporter(shared_data: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_data / "queue-lag"))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def by_name(samples: list[QueueSample]) -> dict[str, QueueSample]:
    return {s.queue: s for s in samples}


def test_kafka_exporter_lag_per_group_and_topic(exporter: str) -> None:
    config = queue_config(name="kafka", kind="prometheus", url=f"{exporter}/kafka_exporter.txt")
    first = by_name(poll_once(config))
    assert sorted(first) == ["kafka/erp.po.out/po-dispatch", "kafka/supply.par-levels/inventory-replenish"]

    po = first["kafka/erp.po.out/po-dispatch"]
    assert (po.system, po.destination, po.consumer_group) == ("kafka", "erp.po.out", "po-dispatch")
    assert po.backlog == 12037 + 11880  # = kafka_consumergroup_lag_sum 23917
    assert po.consumers == 0  # kafka_consumergroup_members
    assert po.in_total == 1586759 + 1585781  # log end offsets over both partitions
    assert po.out_total == 1574722 + 1573901  # the group's committed offsets
    assert status_of(po) == "stopped"

    par = first["kafka/supply.par-levels/inventory-replenish"]
    assert (par.backlog, par.consumers, par.in_total, par.out_total) == (0, 2, 88210, 88210)
    assert status_of(par) == "ok"

    second = by_name(poll_once(config, first))  # same scrape again: nothing moved
    assert second["kafka/erp.po.out/po-dispatch"].rate_out == 0.0
    assert second["kafka/erp.po.out/po-dispatch"].rate_source == "counters"


def test_rabbitmq_prometheus_per_queue(exporter: str) -> None:
    config = queue_config(name="mq", kind="prometheus", url=f"{exporter}/rabbitmq_prometheus_per_object.txt")
    found = by_name(poll_once(config))
    assert sorted(found) == ["mq/erp.invoice.sync", "mq/supplier.onboarding", "mq/wf.approvals"]
    approvals, invoices, onboarding = (
        found["mq/wf.approvals"],
        found["mq/erp.invoice.sync"],
        found["mq/supplier.onboarding"],
    )
    assert (approvals.backlog, approvals.consumers, approvals.in_total) == (1204, 0, 88412)
    assert (invoices.backlog, invoices.unacked, invoices.consumers) == (3 + 12, 12, 4)
    assert (onboarding.backlog, onboarding.consumers) == (0, 1)
    assert [status_of(s) for s in (approvals, invoices, onboarding)] == ["stopped", "ok", "ok"]

    only = poll_once(config.model_copy(update={"queue": "erp.invoice.sync"}))
    assert [s.queue for s in only] == ["mq/erp.invoice.sync"]


def test_exporter_without_queue_metrics_is_unknown(exporter: str) -> None:
    missing = poll_one(queue_config(name="kafka", kind="prometheus", url=f"{exporter}/nothing-here"))
    assert status_of(missing) == "unknown"
    assert "404" in missing.error
    filtered = poll_one(
        queue_config(name="kafka", kind="prometheus", url=f"{exporter}/kafka_exporter.txt", group="billing")
    )
    assert "no queue metrics at" in filtered.error and "group 'billing'" in filtered.error


# --- The API over a live server ----------------------------------------------------------------


def get_queues(server: LiveServer, want: set[str], timeout: float = 20) -> dict[str, dict[str, Any]]:
    """GET /api/v1/queues until every wanted queue has a sample."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{server.api}/api/v1/queues", timeout=10)
        assert response.status_code == 200, response.text
        items = {item["name"]: item for item in response.json()}
        if all(items.get(n, {}).get("sampled_at") for n in want) or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def test_live_api_reports_every_queue_and_a_down_broker_does_not_stop_the_others(
    chdb_path: Path,
    rabbit_queue: Callable[[int], str],
    nats_stream: Callable[[int], str],
    redis_client: redis.Redis,
    exporter: str,
) -> None:
    closed = free_port()
    queues = [
        {"name": "approvals", "kind": "rabbitmq", "url": AMQP, "queue": rabbit_queue(7)},
        {"name": "supplier-events", "kind": "nats", "url": NATS, "stream": nats_stream(5), "consumer": "erp"},
        {
            "name": "invoices",
            "kind": "redis",
            "url": REDIS,
            "stream": _redis_stream(redis_client, 3),
            "group": "erp-sync",
        },
        {"name": "kafka", "kind": "prometheus", "url": f"{exporter}/kafka_exporter.txt"},
        {
            "name": "legacy-mq",
            "kind": "rabbitmq",
            "url": f"amqp://guest:secret@127.0.0.1:{closed}/",
            "queue": "x",
        },
        {"name": "cache-stream", "kind": "redis", "url": f"redis://127.0.0.1:{closed}/0", "stream": "s"},
    ]
    for q in queues:
        q.update(interval="1s", timeout="3s")
    # serve() runs the pollers in the background, as `triage serve` does.
    server = LiveServer(server_settings(chdb_path, queues=queues)).start()
    try:
        want = {
            "approvals",
            "supplier-events",
            "invoices",
            "legacy-mq",
            "cache-stream",
            "kafka/erp.po.out/po-dispatch",
        }
        items = get_queues(server, want)
    finally:
        server.stop()
    try:
        assert set(items) == want | {"kafka/supply.par-levels/inventory-replenish"}
        contract = {
            "name",
            "system",
            "backlog",
            "consumers",
            "oldest_age_seconds",
            "rate_in",
            "rate_out",
            "status",
        }
        assert all(contract <= set(item) for item in items.values())

        def view(name: str) -> tuple[Any, ...]:
            item = items[name]
            return item["system"], item["backlog"], item["consumers"], item["status"]

        assert view("approvals") == ("rabbitmq", 7, 0, "stopped")
        assert view("supplier-events") == ("nats", 5, 0, "stopped")
        assert view("invoices") == ("redis", 3, 0, "stopped")
        assert view("kafka/erp.po.out/po-dispatch") == ("kafka", 23917, 0, "stopped")
        assert view("kafka/supply.par-levels/inventory-replenish") == ("kafka", 0, 2, "ok")
        assert items["invoices"]["destination"] == queues[2]["stream"]
        for name in ("invoices", "supplier-events"):  # both brokers tell the oldest message's age
            assert 0 <= items[name]["oldest_age_seconds"] < 60
            assert items[name]["time_lag_seconds"] == items[name]["oldest_age_seconds"]
        assert items["approvals"]["detail"] == "no consumers while 7 messages wait"

        down = items["legacy-mq"]
        assert (down["status"], down["backlog"], down["system"]) == ("unknown", None, "rabbitmq")
        assert down["error"].startswith(f"cannot poll rabbitmq at amqp://guest:***@127.0.0.1:{closed}/")
        assert "secret" not in down["error"]
        assert items["cache-stream"]["status"] == "unknown"
        assert "Connection refused" in items["cache-stream"]["error"]
    finally:
        server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def test_states_for_correlator_match_destination_names(store: Store) -> None:
    settings = Settings.model_validate(
        {
            "store": store.dsn,
            "queues": [{"name": "approvals", "kind": "rabbitmq", "url": AMQP, "queue": "wf.approvals"}],
        }
    )
    states = current_queue_states(store, settings)
    assert [(s.name, s.status, s.detail) for s in states] == [("approvals", "unknown", "no sample yet")]
    assert states[0].matches("wf.approvals") and states[0].matches("approvals")
    write_samples(store, poll_once(settings.queues[0]))  # wf.approvals does not exist on this broker
    (state,) = current_queue_states(store, settings)
    assert state.status == "unknown" and "NOT_FOUND" in (state.error or "")


@pytest.fixture(scope="module")
def push_server(chdb_path: Path) -> Iterator[LiveServer]:
    polled = {"name": "approvals", "kind": "rabbitmq", "url": AMQP, "queue": "wf.approvals"}
    server = LiveServer(server_settings(chdb_path, queues=[polled])).start()
    yield server
    server.stop()
    server.store.command(f"DROP DATABASE IF EXISTS `{server.store.target.database}`")


def test_pushed_samples_show_up_in_the_queue_list(push_server: LiveServer) -> None:
    url = f"{push_server.api}/api/v1/queues/samples"
    now = time.time()
    samples = [
        {"name": "ibmmq.po.inbound", "system": "ibmmq", "backlog": 40, "consumers": 1, "time": now - 30},
        {"name": "ibmmq.po.inbound", "system": "ibmmq", "backlog": 10, "consumers": 1, "time": now},
        {"name": "sftp.invoices", "backlog": 3, "consumers": 0, "oldest_age_seconds": 900},
    ]
    response = httpx.post(url, json=samples)
    assert (response.status_code, response.json()) == (202, {"accepted": 3})

    items = {i["name"]: i for i in httpx.get(f"{push_server.api}/api/v1/queues").json()}
    ibmmq = items["ibmmq.po.inbound"]
    assert (ibmmq["system"], ibmmq["backlog"], ibmmq["consumers"], ibmmq["status"]) == ("ibmmq", 10, 1, "ok")
    assert ibmmq["trend"] == "draining"
    assert ibmmq["time_lag_seconds"] == pytest.approx(10.0, rel=0.01)  # 10 left at 1 msg/s
    sftp = items["sftp.invoices"]
    assert (sftp["system"], sftp["status"], sftp["oldest_age_seconds"]) == ("push", "stopped", 900.0)
    assert items["approvals"]["status"] == "unknown"  # configured, never polled here


@pytest.mark.parametrize(
    ("payload", "loc", "message"),
    [
        ([{"name": "q", "backlog": -1}], ["body", 0, "backlog"], "greater than or equal to 0"),
        ([{"backlog": 5}], ["body", 0, "name"], "Field required"),
        (
            [{"name": "q", "backlog": 1}, {"name": "q", "backlog": "many"}],
            ["body", 1, "backlog"],
            "valid integer",
        ),
        ([{"name": "q", "backlog": 1, "backlgo": 2}], ["body", 0, "backlgo"], "Extra inputs"),
        ([{"name": "approvals", "backlog": 1}], ["body", 0, "name"], "is polled (kind rabbitmq)"),
        ([{"name": "q", "backlog": 1, "time": "2999-01-01T00:00:00Z"}], ["body", 0, "time"], "in the future"),
        ([], ["body"], "at least 1 item"),
        ({"name": "q", "backlog": 1}, ["body"], "valid list"),
    ],
)
def test_bad_pushes_are_422_naming_the_field(
    push_server: LiveServer, payload: Any, loc: list[Any], message: str
) -> None:
    response = httpx.post(f"{push_server.api}/api/v1/queues/samples", json=payload)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"] == loc and message in e["msg"] for e in errors), errors
    names = {item["name"] for item in httpx.get(f"{push_server.api}/api/v1/queues").json()}
    assert "q" not in names  # nothing of a refused request is stored


def test_bad_queue_config_names_the_entry_and_the_fix() -> None:
    entry = {"name": "invoices", "kind": "redis", "url": REDIS, "stream": "s", "interval": "0s"}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"queues": [entry]}, environ={})
    assert "queues[0] (invoices): interval must be at least 1s (given 0.0s)" in str(caught.value)
