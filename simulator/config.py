"""The demo's configuration: demo.yaml at the run's speed and broker, under the user's own settings."""

from __future__ import annotations

import copy
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from triage.durations import format_duration, parse_duration
from triage.errors import ConfigError
from triage.settings import Settings, deep_merge, load_settings, read_yaml

DEMO_FILE = Path(__file__).with_name("demo.yaml")
QUEUE_PREFIX = "triage-demo"
POLL_INTERVAL = 2.0
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"  # seconds between polls of the run's RabbitMQ queues


@dataclass
class DemoOptions:
    """How the demo runs (the flags beyond `serve`'s)."""

    speed: float = 40.0
    duration: float | None = None
    truth: Path | None = None
    seed: int | None = None
    backfill: float = 2 * 86400.0
    broker: str = "auto"
    amqp_url: str = DEFAULT_AMQP
    run_id: str = ""


def business_settings() -> Settings:
    """demo.yaml as written: durations in simulated time (what the workflows' pace is drawn from)."""
    return load_settings(DEMO_FILE, environ={})


def demo_config(
    speed: float, run_id: str, rabbit_url: str | None, today: date, kafka_port: int | None = None
) -> dict[str, Any]:
    """demo.yaml with every duration divided by `speed`, its queues on the chosen broker, its Kafka
    topics' exporter on `kafka_port` of loopback (a free one unless given), and a period close."""
    if speed <= 0:
        raise ConfigError(f"--speed must be positive (given {speed}); 1 is real time, 40 the default")
    data = copy.deepcopy(read_yaml(DEMO_FILE))
    for workflow in data.get("workflows", []):
        for step in _written_steps(workflow.get("steps", [])):
            if step.get("sla"):
                step["sla"] = {tier: _scaled(value, speed) for tier, value in step["sla"].items()}
    correlation = data.setdefault("correlation", {})
    for name, default in (("health_window", 600), ("reevaluate", 30)):
        correlation[name] = _scaled(correlation.get(name, default), speed)
    correlation.setdefault("period_close", [(today + timedelta(days=1)).isoformat()])
    # Breach forecasts learn from waits as they end: read them again as often in simulated time as a real
    # estate would (a minute), or at ×20 the forecasts would lag the live run by 20 simulated minutes.
    forecast = correlation.setdefault("forecast", {})
    forecast["refresh"] = _scaled(forecast.get("refresh", 60), speed)
    forecast["stoppage_after"] = _scaled(forecast.get("stoppage_after", 60), speed)
    for queue in data.get("queues", []):
        for name in ("window", "lag_threshold"):
            if name in queue:
                queue[name] = _scaled(queue[name], speed)
        if queue.get("kind") == "prometheus":  # a Kafka topic the simulator keeps, behind its exporter
            kafka_port = kafka_port or free_loopback_port()  # one exporter for every topic
            queue.update(url=f"http://127.0.0.1:{kafka_port}/metrics", interval=POLL_INTERVAL)
        elif rabbit_url:
            queue.update(
                kind="rabbitmq",
                url=rabbit_url,
                queue=f"{QUEUE_PREFIX}-{run_id}.{queue['queue']}",
                interval=POLL_INTERVAL,
            )
    return data


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now (the simulator binds it when the run starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _written_steps(items: list[Any]) -> list[dict[str, Any]]:
    """Every step as written in a workflow's YAML, those inside `one_of` branches too."""
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict) and "one_of" in item:
            for branch in item["one_of"]:
                out.extend(_written_steps(branch if isinstance(branch, list) else [branch]))
        elif isinstance(item, dict):
            out.append(item)
    return out


def _scaled(value: Any, speed: float) -> float:
    return round(parse_duration(value) / speed, 3)


def user_gave_store(config_file: str | None, flags: dict[str, Any], environ: dict[str, str]) -> bool:
    """Whether the user chose a store (flag, environment or config file) rather than the default."""
    if flags.get("store") or environ.get("TRIAGE_STORE") or environ.get("TRIAGE_DATA_DIR"):
        return True
    return bool(config_file and read_yaml(config_file).get("store"))


def demo_settings(
    base: dict[str, Any],
    config_file: str | None,
    flags: dict[str, Any],
    workdir: Path,
    environ: dict[str, str] | None = None,
) -> Settings:
    """The demo config, then the user's file, then TRIAGE_* variables, then flags (later ones win)."""
    environ = dict(os.environ if environ is None else environ)
    config_file = config_file or environ.get("TRIAGE_CONFIG")
    merged = copy.deepcopy(base)
    if config_file:
        load_settings(config_file, environ={})  # its own errors name its own file
        merged = deep_merge(merged, read_yaml(config_file))
    if not user_gave_store(config_file, flags, environ):
        merged["store"] = f"chdb://{workdir / 'data'}"
        if not environ.get("TRIAGE_REDACTION_KEY"):  # a throw-away store gets a throw-away key, quietly
            key_file = workdir / "redaction.key"
            key_file.write_text(secrets.token_hex(32), "utf-8")
            key_file.chmod(0o600)
            merged.setdefault("redaction", {}).setdefault("key_file", str(key_file))
    path = workdir / "demo-config.yaml"
    path.write_text(yaml.safe_dump(merged, sort_keys=False), "utf-8")
    environ.pop("TRIAGE_CONFIG", None)
    return load_settings(path, flags, environ)


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{QUEUE_PREFIX}-"))


def queue_destinations(settings: Settings, needed: list[str]) -> dict[str, str]:
    """Queue config name → the name spans carry, for every queue the simulated estate uses."""
    found = {q.name: (q.queue or q.stream or q.name) for q in settings.queues}
    missing = [name for name in needed if name not in found]
    if missing:
        raise ConfigError(
            f"the demo's estate uses the queues {', '.join(missing)}, which your configuration replaced; "
            "keep demo.yaml's `queues:` (leave `queues` out of your --config)"
        )
    return {name: found[name] for name in needed}


def check_backfill(options: DemoOptions, settings: Settings) -> None:
    """The history must fit in raw retention, or it would be dropped as it lands."""
    limit = settings.retention.raw_days * 86400.0 - 3600.0
    if options.backfill > limit:
        raise ConfigError(
            f"--backfill {format_duration(options.backfill)} reaches past the raw retention of "
            f"{settings.retention.raw_days} days; give at most {format_duration(limit)}"
        )
