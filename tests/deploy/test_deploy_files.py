"""What can be checked of deploy/ without a container runtime or a cluster: the files parse, images are
pinned, every TRIAGE_* variable is documented, the compose services and the Kubernetes Deployments run
every role with valid flags, correlator shards are complete with a standby each and point at ClickHouse
nodes, the ClickHouse and Keeper XML describe 2 shards x 2 replicas and 3 Keeper nodes, and the
Protobuf projection schema mounted on the nodes is the repository's."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml

import collector.metrics  # noqa: F401  (declares the collector's metrics in the default registry)
from app.cli import build_parser
from app.config import load_config
from collector.native import SCHEMA_FILE
from triage.settings import load_settings
from triage.store.dsn import parse_dsn
from triage.vocabulary import ROLES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text("utf-8")
# What docs/operations.md ("Cluster schema") asks of the profile of Triage's ClickHouse user.
CLUSTER_USER_SETTINGS = {"distributed_foreground_insert": "1", "prefer_global_in_and_join": "1"}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d is not None]


def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text("utf-8"))


def env_example() -> dict[str, str]:
    lines = (COMPOSE_DIR / ".env.example").read_text("utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, from `env`."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env and (env[name] or op != ":-"):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg or ""

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    example = env_example() | {"TRIAGE_API_KEYS": "key-for-tests"}
    return {k: interpolate(str(v), example) for k, v in env.items()}


def triage_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if str(s.get("image", "")).startswith("triage:")}


def clickhouse_services() -> dict[str, dict[str, Any]]:
    services = compose()["services"].items()
    return {n: s for n, s in services if s.get("image", "").startswith("clickhouse/clickhouse-server:")}


def serve_args(args: list[str]) -> tuple[list[str], str]:
    """Roles and shard of a `triage serve` command line, as the CLI and the settings read them."""
    parsed = build_parser().parse_args(args)
    assert parsed.command == "serve", args
    overrides = {k: getattr(parsed, k) for k in ("roles", "shard") if getattr(parsed, k) is not None}
    settings = load_settings(None, overrides, environ={})
    return [str(r) for r in settings.roles], str(settings.shard)


def images(node: Any) -> list[str]:
    """Every container image a parsed YAML document names (`image: ref`, or Helm's repository + tag)."""
    found: list[str] = []
    if isinstance(node, dict):
        image = node.get("image")
        if isinstance(image, str):
            found.append(image)
        elif isinstance(image, dict) and "repository" in image:
            found.append(f"{image['repository']}:{image.get('tag', '')}")
        for value in node.values():
            found += images(value)
    elif isinstance(node, list):
        for value in node:
            found += images(value)
    return found


def pinned(ref: str) -> bool:
    """An exact release: a digest, or a tag of at least major.minor.patch (not latest, not a branch like 25.8)."""
    if re.search(r"@sha256:[0-9a-f]{64}$", ref):
        return True
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        return False
    return bool(re.fullmatch(r"v?\d+\.\d+\.\d+(\.\d+)*([-.][A-Za-z0-9.-]+)?", tag))


def documented(name: str) -> bool:
    """In docs/configuration.md by name, or (TRIAGE_A__B) as the nested field `a.b` the convention maps it to."""
    if re.search(rf"`{name}`|\b{name}\b", CONFIG_DOC):
        return True
    if "__" in name:
        field = name.removeprefix("TRIAGE_").lower().replace("__", ".")
        return f"`{field}`" in CONFIG_DOC
    return False


# -- every file ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    assert docs(path), f"{path} holds no YAML document"


def test_the_pin_check_refuses_floating_images() -> None:
    for ref in ("nginx", "nginx:latest", "clickhouse/clickhouse-server:25.8", "registry:5000/triage", "x:1"):
        assert not pinned(ref), ref
    for ref in ("nginx:1.28.0-alpine", "clickhouse/clickhouse-keeper:25.8.30.16", "triage:0.1.0", "a/b:v0.12.0"):
        assert pinned(ref), ref
    assert pinned("python@sha256:" + "a" * 64)


def test_every_image_is_pinned() -> None:
    refs = [(p, ref) for p in yaml_files() for d in docs(p) for ref in images(d)]
    assert len(refs) >= 20, refs  # compose, k8s, the ClickHouse installation, the adapter
    loose = [f"{p.relative_to(DEPLOY)}: {ref}" for p, ref in refs if not pinned(ref)]
    assert not loose, loose
    triage = {ref for _, ref in refs if ref.split(":")[0] == "triage"}
    assert triage == {f"triage:{VERSION}"}, "the Triage image is tagged with pyproject.toml's version"
    kustomize_tags = {i["name"]: i["newTag"] for i in docs(K8S / "kustomization.yaml")[0]["images"]}
    assert kustomize_tags == {"triage": VERSION}


def test_every_dockerfile_base_is_pinned() -> None:
    dockerfiles = sorted(DEPLOY.rglob("Dockerfile*"))
    bases = [
        line.split()[1]
        for p in dockerfiles
        if p.suffix != ".dockerignore"
        for line in p.read_text().splitlines()
        if line.upper().startswith("FROM ")
    ]
    assert bases == ["python:3.11.14-slim-bookworm"]
    assert all(pinned(b) for b in bases)
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["triage"]' in text and "pip install ." in text


def test_the_documentation_check_notices_an_undocumented_variable() -> None:
    assert documented("TRIAGE_STORE") and documented("TRIAGE_INGEST__WAL__DIR")
    assert not documented("TRIAGE_NO_SUCH_SETTING") and not documented("TRIAGE_INGEST__NO_SUCH")


def test_every_triage_variable_in_deploy_is_documented() -> None:
    names: set[str] = set()
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            names |= set(re.findall(r"\bTRIAGE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text("utf-8")))
    assert {"TRIAGE_STORE", "TRIAGE_CLUSTER", "TRIAGE_CONFIG", "TRIAGE_REDACTION_KEY"} <= names
    assert sorted(n for n in names if not documented(n)) == []


# -- compose -------------------------------------------------------------------------------------


def test_compose_variables_come_from_the_env_example() -> None:
    text = (COMPOSE_DIR / "compose.yaml").read_text("utf-8")
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert used and used <= set(env_example()), used - set(env_example())


def test_compose_services_run_every_role_with_valid_flags() -> None:
    services = triage_services()
    assert services["migrate"]["command"] == ["migrate"]
    roles: Counter[str] = Counter()
    for name, service in services.items():
        if name == "migrate":
            continue
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        service_roles, _ = serve_args(service["command"])
        roles.update(service_roles)
    assert set(roles) == {str(r) for r in ROLES}


def test_compose_triage_settings_load_for_every_service() -> None:
    for name, service in triage_services().items():
        env = service_env(service)
        assert env["TRIAGE_CONFIG"] == "/etc/triage/triage.yaml"
        assert "./triage.yaml:/etc/triage/triage.yaml:ro" in service["volumes"], name
        settings = load_config(COMPOSE_DIR / "triage.yaml", environ=env)
        assert settings.cluster == "triage" and settings.host == "0.0.0.0", name
        assert parse_dsn(settings.store).database == "triage"


def test_compose_correlator_shards_are_complete_with_a_standby_on_another_node() -> None:
    nodes = clickhouse_services()
    shards: dict[str, list[str]] = {}
    for name, service in triage_services().items():
        if name == "migrate":
            continue
        roles, shard = serve_args(service["command"])
        host = parse_dsn(service_env(service)["TRIAGE_STORE"]).host
        if "correlator" in roles:
            assert roles == ["correlator"], name
            assert host in nodes, f"{name} must name a ClickHouse node in its DSN, not {host}"
            shards.setdefault(shard, []).append(host)
        else:
            assert host == "clickhouse-lb", name
    counts = {int(s.split("/")[1]) for s in shards}
    assert len(counts) == 1, f"every correlator must agree on N: {sorted(shards)}"
    n = counts.pop()
    assert sorted(shards) == [f"{i}/{n}" for i in range(1, n + 1)]
    for shard, hosts in shards.items():
        assert len(hosts) >= 2 and len(set(hosts)) == len(hosts), f"shard {shard}: {hosts}"


def test_compose_collectors_sit_behind_the_load_balancer() -> None:
    services = compose()["services"]
    lb = services["otlp-lb"]
    assert {"4317:4317", "4318:4318"} <= set(lb["ports"])
    conf = (COMPOSE_DIR / "nginx" / "otlp-lb.conf").read_text()
    assert re.findall(r"server (\S+):(\d+) resolve", conf) == [
        ("collector", "4318"),
        ("collector", "4317"),
        ("collector", "8080"),
    ]
    assert "ports" not in services["collector"]
    assert serve_args(services["collector"]["command"])[0] == ["collector"]
    assert services["collector"]["deploy"]["replicas"] >= 2
    ch_lb = (COMPOSE_DIR / "nginx" / "clickhouse-lb.conf").read_text()
    assert set(re.findall(r"server (\S+):8123", ch_lb)) == set(clickhouse_services())


def _xml(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _mount(service: dict[str, Any], target: str) -> Path | None:
    for volume in service["volumes"]:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return (COMPOSE_DIR / source).resolve()
    return None


def test_clickhouse_cluster_is_two_shards_of_two_replicas_on_three_keepers() -> None:
    nodes = clickhouse_services()
    config = _xml(COMPOSE_DIR / "clickhouse" / "config.d" / "triage-cluster.xml")
    cluster = config.find("remote_servers/triage")
    assert cluster is not None and triage_services()["collector"]["environment"]["TRIAGE_CLUSTER"] == "triage"
    layout = [[r.findtext("host") for r in s.findall("replica")] for s in cluster.findall("shard")]
    assert [len(s) for s in layout] == [2, 2]
    assert all(s.findtext("internal_replication") == "true" for s in cluster.findall("shard"))
    assert sorted(h for s in layout for h in s) == sorted(nodes)
    assert cluster.find("secret").get("from_env") == "CLICKHOUSE_CLUSTER_SECRET"

    macros = {}
    for name, service in nodes.items():
        assert _mount(service, "/etc/clickhouse-server/config.d/triage-cluster.xml") is not None, name
        macro_file = _mount(service, "/etc/clickhouse-server/config.d/macros.xml")
        assert macro_file is not None and macro_file.is_file(), name
        node = _xml(macro_file).find("macros")
        macros[name] = (node.findtext("shard"), node.findtext("replica"))
        shard_of_host = next(i for i, s in enumerate(layout, 1) if name in s)
        assert node.findtext("shard") == str(shard_of_host), f"{name}'s {{shard}} macro"
        assert service["environment"]["TRIAGE_CLICKHOUSE_PASSWORD"].startswith("${TRIAGE_CLICKHOUSE_PASSWORD")
        users = _mount(service, "/etc/clickhouse-server/users.d/triage.xml")
        assert (
            users is not None
            and _xml(users).find("users/triage/password").get("from_env") == "TRIAGE_CLICKHOUSE_PASSWORD"
        )
        profile = _xml(users).find(f"profiles/{_xml(users).findtext('users/triage/profile')}")
        assert {s.tag: s.text for s in profile} == CLUSTER_USER_SETTINGS, f"{name}: the triage user's profile"
    # Triage's Keeper paths: {shard}/.../T_local with replica {replica}, global tables with {shard}-{replica}.
    assert all(shard and replica for shard, replica in macros.values())
    assert len({f"{shard}-{replica}" for shard, replica in macros.values()}) == 4
    for shard in {s for s, _ in macros.values()}:
        replicas = [r for s, r in macros.values() if s == shard]
        assert len(set(replicas)) == len(replicas) == 2, f"shard {shard}: {replicas}"

    keepers = {
        n: s for n, s in compose()["services"].items() if s.get("image", "").startswith("clickhouse/clickhouse-keeper:")
    }
    assert len(keepers) == 3
    ensembles, ids = set(), {}
    for name, service in keepers.items():
        server = _xml(_mount(service, "/etc/clickhouse-keeper/keeper_config.xml")).find("keeper_server")
        raft = {s.findtext("hostname"): s.findtext("id") for s in server.findall("raft_configuration/server")}
        ensembles.add(tuple(sorted(raft.items())))
        ids[name] = server.findtext("server_id")
        assert raft[name] == ids[name], f"{name}'s server_id must be its own raft entry"
        port = server.findtext("tcp_port")
        assert (name, port) in {(n.findtext("host"), n.findtext("port")) for n in config.findall("zookeeper/node")}
    assert len(ensembles) == 1 and len(set(ids.values())) == 3


def test_every_clickhouse_node_reads_the_repository_projection_schema() -> None:
    schema_dir = _xml(COMPOSE_DIR / "clickhouse" / "config.d" / "triage-cluster.xml").findtext("format_schema_path")
    target = schema_dir.rstrip("/") + "/" + SCHEMA_FILE.name
    for name, service in clickhouse_services().items():
        source = _mount(service, target)
        assert source == SCHEMA_FILE.resolve() and source.is_file(), f"{name} mounts {source} at {target}"
        assert any(v.endswith(f"{target}:ro") for v in service["volumes"]), f"{name}: mount it read-only"


def test_compose_and_kubernetes_configurations_are_the_same_and_valid() -> None:
    composed = load_config(COMPOSE_DIR / "triage.yaml", environ={})
    kube = load_config(K8S / "triage.yaml", environ={})
    assert composed.model_dump() == kube.model_dump()
    assert [w.name for w in composed.workflows] == ["procure_to_pay"] and composed.redaction.enabled


# -- Kubernetes ----------------------------------------------------------------------------------


def k8s_objects() -> list[dict[str, Any]]:
    resources = docs(K8S / "kustomization.yaml")[0]["resources"]
    return [d for r in resources for d in docs(K8S / r)]


def deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_objects() if d["kind"] == "Deployment"}


def test_kubernetes_runs_no_statefulset_and_every_role() -> None:
    kinds = Counter(d["kind"] for d in k8s_objects())
    assert "StatefulSet" not in kinds and kinds["Deployment"] >= 5 and kinds["Job"] == 1
    roles: set[str] = set()
    for deployment in deployments().values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        roles |= set(serve_args(container["args"])[0])
    assert roles == {str(r) for r in ROLES}


def test_every_kubernetes_container_has_resources_and_probes() -> None:
    pods = [d["spec"]["template"]["spec"] for d in k8s_objects() if d["kind"] in ("Deployment", "Job")]
    for pod in pods:
        for container in pod.get("initContainers", []) + pod["containers"]:
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) >= {"cpu", "memory"}, container["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True
    for name, deployment in deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == 8080, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        env = {e["name"]: e for e in container["env"]}
        assert env["TRIAGE_CONFIG"]["value"] == "/etc/triage/triage.yaml"
        assert env["TRIAGE_STORE"]["valueFrom"]["secretKeyRef"]["name"] == "triage"
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["config"]["configMap"]["name"] == "triage-config"


def test_kubernetes_correlator_shards_have_a_standby_and_a_node_of_their_own() -> None:
    secret = docs(K8S / "secret.example.yaml")[0]["stringData"]
    shard_keys: dict[str, str] = {}
    for name, deployment in deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        roles, shard = serve_args(container["args"])
        key = {e["name"]: e for e in container["env"]}["TRIAGE_STORE"]["valueFrom"]["secretKeyRef"]["key"]
        if roles == ["correlator"]:
            assert deployment["spec"]["replicas"] >= 2, name
            shard_keys[shard] = key
        elif "alerts" in roles:
            assert deployment["spec"]["replicas"] >= 2, name
        else:
            assert "correlator" not in roles and key == "store", name
    n = int(next(iter(shard_keys)).split("/")[1])
    assert sorted(shard_keys) == [f"{i}/{n}" for i in range(1, n + 1)]
    hosts = {shard: parse_dsn(secret[key]).host for shard, key in shard_keys.items()}
    assert len(set(hosts.values())) == n and all(h.startswith("chi-triage-triage-") for h in hosts.values())
    assert parse_dsn(secret["store"]).host.startswith("clickhouse-triage.")


def test_kubernetes_configmap_is_the_checked_configuration() -> None:
    kustomization = docs(K8S / "kustomization.yaml")[0]
    assert kustomization["configMapGenerator"] == [{"name": "triage-config", "files": ["triage.yaml"]}]
    assert "secret.example.yaml" not in kustomization["resources"]  # apply -k must never overwrite the real one


def test_hpa_scales_the_collectors_on_buffered_rows_the_adapter_serves() -> None:
    (hpa,) = [d for d in k8s_objects() if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    collector = deployments()[target["name"]]
    assert target["kind"] == "Deployment"
    (container,) = collector["spec"]["template"]["spec"]["containers"]
    assert serve_args(container["args"])[0] == ["collector"]
    (pods_metric,) = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    exposition = prometheus_client.generate_latest().decode()
    assert re.search(rf"^# TYPE {pods_metric} gauge$", exposition, re.M), f"{pods_metric} is no Triage gauge"
    rules = yaml.safe_load((K8S / "prometheus-adapter" / "values.yaml").read_text())["rules"]["custom"]
    assert pods_metric in [r["name"]["as"] for r in rules]
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


def test_the_clickhouse_installation_mounts_the_projection_schema() -> None:
    path = K8S / "clickhouse" / "clickhouse-installation.yaml"
    chi = next(d for d in docs(path) if d["kind"] == "ClickHouseInstallation")
    configuration = chi["spec"]["configuration"]
    assert configuration["clusters"][0]["layout"] == {"shardsCount": 2, "replicasCount": 2}
    profile = configuration["users"]["triage/profile"]
    settings = {k.split("/", 1)[1]: str(v) for k, v in configuration["profiles"].items() if k.startswith(f"{profile}/")}
    assert settings == CLUSTER_USER_SETTINGS
    schema_dir = chi["spec"]["configuration"]["settings"]["format_schema_path"].rstrip("/")
    (pod,) = chi["spec"]["templates"]["podTemplates"]
    (container,) = pod["spec"]["containers"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"].rstrip("/") == schema_dir)
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    configmap = volume["configMap"]["name"]
    relative = SCHEMA_FILE.relative_to(ROOT).as_posix()
    assert f"create configmap {configmap}" in path.read_text() and f"--from-file={relative}" in path.read_text()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
def test_kustomize_builds_the_manifests() -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True).stdout
    built = [d for d in yaml.safe_load_all(out) if d]
    (configmap,) = [d for d in built if d["kind"] == "ConfigMap"]
    assert configmap["metadata"]["name"].startswith("triage-config-")  # a hashed name: a change rolls the pods
    assert all(d["metadata"].get("namespace") == "triage" for d in built if d["kind"] != "Namespace")
    mounted = {
        v["configMap"]["name"]
        for d in built
        if d["kind"] in ("Deployment", "Job")
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "configMap" in v
    }
    assert mounted == {configmap["metadata"]["name"]}
    assert yaml.safe_load(configmap["data"]["triage.yaml"]) == yaml.safe_load((K8S / "triage.yaml").read_text())
