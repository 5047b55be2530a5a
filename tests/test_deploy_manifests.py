"""Offline validation of everything Pricewire deploys with: Kubernetes overlays, the Compose
file, the gateway, the alert rules, the Grafana dashboard, the image recipe, the AsyncAPI
document and every service's live ``/metrics``.

Each check uses the real tool where one exists and fails (never skips) when it is missing,
saying how to install it:

==========================  ==================================================================
what                        tool
==========================  ==================================================================
kustomize overlays          ``kubectl kustomize`` (kustomize v5) or ``kustomize``
Kubernetes schemas          ``kubernetes-validate`` (PyPI), strict, built-in kinds; the custom
                            kinds (ServiceMonitor, PrometheusRule) by the structural tests here
Compose file                ``docker compose config`` or ``docker-compose config`` (Debian)
nginx gateway               ``nginx -t`` (Debian ``nginx``)
rules, config, metrics      ``promtool`` (Debian ``prometheus``)
AsyncAPI document           the official AsyncAPI 3.0.0 JSON Schema (npm ``@asyncapi/specs``)
==========================  ==================================================================
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "pricewire.rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "pricewire.json"
ASYNCAPI_SPECS_VERSION = "6.11.1"
ASYNCAPI_SCHEMA = (
    REPO / ".tools/asyncapi/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"
)

#: The services' modules, as the image, Compose and Kubernetes run them.
SERVICES = {
    "ws-edge": "pricewire_edge",
    "session-registry": "pricewire_registry",
    "stats": "pricewire_stats",
    "market-ingest": "pricewire_ingest",
}
#: Kinds without a schema in kubernetes-validate, each checked by a structural test below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
#: Oldest Kubernetes the manifests support (the StatefulSet pod-index label) and the newest.
K8S_VERSIONS = ("1.28.0", "latest")

INSTALL = {
    "kubectl": (
        "kubectl with kustomize v5 (kubectl >= 1.27) or a kustomize >= 5 binary is needed "
        "to render k8s/overlays; Debian's kubernetes-client is too old. Install kubectl from "
        "https://pkgs.k8s.io or the kustomize release binary, and put it on PATH"
    ),
    "promtool": "promtool is needed: apt-get install -y --no-install-recommends prometheus",
    "compose": (
        "a Compose validator is needed: apt-get install -y --no-install-recommends "
        "docker-compose (or the Docker Compose v2 plugin)"
    ),
    "nginx": "nginx is needed for `nginx -t`: apt-get install -y --no-install-recommends nginx",
    "kubernetes-validate": (
        "the PyPI package kubernetes-validate is needed: add `kubernetes-validate>=1.31` to "
        "[dependency-groups].dev in the root pyproject.toml, then uv lock && uv sync"
    ),
    "asyncapi": (
        "the official AsyncAPI JSON Schemas are needed: npm install --no-save --no-audit "
        f"--no-fund --prefix .tools/asyncapi @asyncapi/specs@{ASYNCAPI_SPECS_VERSION}"
    ),
}


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(INSTALL[hint], pytrace=False)
    return found


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kwargs)


# -- rendering ---------------------------------------------------------------------------------


@functools.cache
def _kustomize_cmd() -> tuple[str, ...]:
    standalone = shutil.which("kustomize")
    if standalone:
        out = _run([standalone, "version"]).stdout
        if re.search(r"v?([5-9]|\d{2,})\.", out):
            return (standalone, "build")
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = _run([kubectl, "version", "--client", "-o", "json"]).stdout
        try:
            kustomize = json.loads(out).get("kustomizeVersion", "")
        except json.JSONDecodeError:
            kustomize = ""
        if re.match(r"v?([5-9]|\d{2,})\.", kustomize):
            return (kubectl, "kustomize")
    pytest.fail(INSTALL["kubectl"], pytrace=False)


@functools.cache
def _render(path: str) -> tuple[dict[str, Any], ...]:
    # kubectl here is the Cloud SDK's dispatcher, which has been seen to fail once under a
    # loaded machine; a real kustomize error fails all three tries the same way
    for _ in range(3):
        result = _run([*_kustomize_cmd(), str(K8S / path)])
        if result.returncode == 0:
            break
    assert result.returncode == 0, f"kustomize failed on k8s/{path}:\n{result.stderr}"
    docs = tuple(d for d in yaml.safe_load_all(result.stdout) if d)
    assert docs, f"k8s/{path} rendered nothing"
    return docs


def _overlay(name: str) -> tuple[dict[str, Any], ...]:
    return _render(f"overlays/{name}")


def _kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _workloads(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and In/NotIn/Exists/DoesNotExist)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


# -- Kubernetes ------------------------------------------------------------------------------


def _kubernetes_validate() -> Any:
    import importlib.util

    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.fail(INSTALL["kubernetes-validate"], pytrace=False)
    import kubernetes_validate

    return kubernetes_validate


@pytest.mark.parametrize("path", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_every_kustomization_renders_to_valid_kubernetes_objects(path: str) -> None:
    kv = _kubernetes_validate()
    docs = _render(path)
    problems: list[str] = []
    for version in K8S_VERSIONS:
        target = kv.latest_version() if version == "latest" else version
        for doc in docs:
            where = f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {target})"
            if doc["kind"] in CUSTOM_KINDS:
                continue  # no schema bundled: the structural tests below check them
            try:
                kv.validate(doc, target, strict=True)
            except kv.SchemaNotFoundError:
                problems.append(f"{where}: no schema; add a structural test and CUSTOM_KINDS")
            except kv.ValidationError as err:
                problems.append(f"{where}: {err.message} at {'.'.join(map(str, err.path))}")
    assert not problems, "\n".join(problems)


def test_overlays_are_dev_and_prod() -> None:
    assert OVERLAYS == ["dev", "prod"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_committed_only_referenced(overlay: str) -> None:
    docs = _overlay(overlay)
    assert not _kind(docs, "Secret"), "Secrets are created by the operator, never rendered"
    referenced: set[str] = set()
    for workload in _workloads(docs):
        spec = workload["spec"]["template"]["spec"]
        referenced |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        for c in _containers(workload):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
    assert referenced == {"pricewire-broadcast", "pricewire-jwt"}
    registry = _one(docs, "Deployment", "session-registry")
    env = _env(_containers(registry)[0])
    assert env["PRICEWIRE_BROADCAST_TOKEN"]["secretKeyRef"]["name"] == "pricewire-broadcast"


def test_prod_requires_the_jwt_key_and_turns_auth_on() -> None:
    edge = _one(_overlay("prod"), "Deployment", "ws-edge")
    volumes = {v["name"]: v for v in edge["spec"]["template"]["spec"]["volumes"]}
    assert volumes["jwt"]["secret"] == {
        "secretName": "pricewire-jwt",
        "optional": False,
        "defaultMode": 0o440,
    }
    env = _env(_containers(edge)[0])
    assert env["PRICEWIRE_AUTH__MODE"] in ("optional", "required")
    mount = next(m for m in _containers(edge)[0]["volumeMounts"] if m["name"] == "jwt")
    assert env["PRICEWIRE_AUTH__PUBLIC_KEY_FILE"].startswith(mount["mountPath"] + "/")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_non_root_read_only_with_limits(overlay: str) -> None:
    problems = []
    for workload in _workloads(_overlay(overlay)):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token it does not need")
        for c in pod["containers"]:
            where = f"{name}/{c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped")
            for bound in ("requests", "limits"):
                if set(c.get("resources", {}).get(bound, {})) < {"cpu", "memory"}:
                    problems.append(f"{where}: no cpu and memory {bound}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_deployment_with_probes_on_health_and_ready(overlay: str) -> None:
    docs = _overlay(overlay)
    for name, module in SERVICES.items():
        kind = "StatefulSet" if name == "market-ingest" else "Deployment"
        container = _containers(_one(docs, kind, name))[0]
        assert container["command"] == ["python", "-m", module]
        assert container["ports"] == [{"name": "http", "containerPort": 8000}]
        config_maps = [e["configMapRef"]["name"] for e in container["envFrom"]]
        assert any(n.startswith("pricewire-config-") for n in config_maps), config_maps
        assert container["startupProbe"]["httpGet"]["path"] == "/health"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        env = _env(container)
        assert env["PRICEWIRE_INSTANCE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    config = next(
        d for d in _kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("pricewire-config")
    )
    assert config["data"]["PRICEWIRE_PORT"] == "8000"
    assert config["data"]["PRICEWIRE_NATS_STREAM_REPLICAS"] == "3"


def _prestop_seconds(container: dict[str, Any]) -> float:
    prestop = container["lifecycle"]["preStop"]
    if "sleep" in prestop:
        return float(prestop["sleep"]["seconds"])
    command = prestop["exec"]["command"]
    assert command[0] == "sleep", command
    return float(command[1])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ws_edge_drains_within_its_termination_grace_period(overlay: str) -> None:
    docs = _overlay(overlay)
    edge = _one(docs, "Deployment", "ws-edge")
    pod = edge["spec"]["template"]["spec"]
    container = _containers(edge)[0]
    drain = float(_env(container)["PRICEWIRE_DRAIN_WINDOW_S"])
    # after the drain window the edge still drains NATS and closes the sessions: 10 s of room
    assert pod["terminationGracePeriodSeconds"] >= _prestop_seconds(container) + drain + 10
    assert "replicas" not in edge["spec"], "the HPA owns the replica count"
    assert edge["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    hpa = _one(docs, "HorizontalPodAutoscaler", "ws-edge")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ws-edge",
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = _one(docs, "PodDisruptionBudget", "ws-edge")
    assert _matches(pdb["spec"]["selector"], edge["spec"]["template"]["metadata"]["labels"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_shards_follow_the_statefulset_replica_count(overlay: str) -> None:
    ingest = _one(_overlay(overlay), "StatefulSet", "market-ingest")
    env = _env(_containers(ingest)[0])
    assert env["PRICEWIRE_SHARD_COUNT"] == str(ingest["spec"]["replicas"])
    assert env["PRICEWIRE_SHARD_INDEX"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }


def test_prod_runs_several_shards_and_edges() -> None:
    docs = _overlay("prod")
    assert _one(docs, "StatefulSet", "market-ingest")["spec"]["replicas"] >= 2
    assert _one(docs, "HorizontalPodAutoscaler", "ws-edge")["spec"]["minReplicas"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_is_a_three_node_jetstream_cluster_on_volumes(overlay: str) -> None:
    docs = _overlay(overlay)
    nats = _one(docs, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["podManagementPolicy"] == "Parallel"
    headless = _one(docs, "Service", nats["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    claim = nats["spec"]["volumeClaimTemplates"][0]
    server = next(c for c in _containers(nats) if c["name"] == "nats")
    assert any(m["name"] == claim["metadata"]["name"] for m in server["volumeMounts"])
    conf = next(d for d in _kind(docs, "ConfigMap") if d["metadata"]["name"] == "nats-config")
    text = conf["data"]["nats.conf"]
    assert "jetstream" in text and "store_dir: /data" in text
    routes = re.findall(r"nats://(nats-\d)\.([a-z-]+):6222", text)
    assert sorted(r[0] for r in routes) == ["nats-0", "nats-1", "nats-2"]
    assert {r[1] for r in routes} == {headless["metadata"]["name"]}
    assert any(c["name"] == "exporter" for c in _containers(nats)), "NATS monitoring exporter"
    pdb = _one(docs, "PodDisruptionBudget", "nats")
    assert pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_monitors_and_ingress_point_at_real_ports(overlay: str) -> None:
    docs = _overlay(overlay)
    pods = [w["spec"]["template"] for w in _workloads(docs)]

    def port_names(service: dict[str, Any]) -> set[str]:
        return {p["name"] for p in service["spec"]["ports"]}

    for service in _kind(docs, "Service"):
        # a Service's selector is a plain map: _matches reads it through matchLabels
        selected = [
            p
            for p in pods
            if _matches({"matchLabels": service["spec"]["selector"]}, p["metadata"]["labels"])
        ]
        assert selected, f"Service {service['metadata']['name']} selects no pod"
        container_ports = {
            port.get("name")
            for p in selected
            for c in p["spec"]["containers"]
            for port in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (service["metadata"]["name"], port)

    services = _kind(docs, "Service")
    jobs = set()
    for monitor in _kind(docs, "ServiceMonitor"):
        selected = [
            s for s in services if _matches(monitor["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert selected, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            assert all(endpoint["port"] in port_names(s) for s in selected), monitor
        jobs |= {s["metadata"]["name"] for s in selected}
    assert jobs == {*SERVICES, "nats"}, "every service and NATS is scraped (job = Service name)"

    ingress = _one(docs, "Ingress", "pricewire")
    routes: dict[str, str] = {}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            service = _one(docs, "Service", backend["name"])
            assert backend["port"]["name"] in port_names(service)
            routes[path["path"]] = backend["name"]
    assert routes["/ws"] == "ws-edge"
    assert routes["/"] == "ws-edge"  # the static files and the test page
    assert routes["/api"] == "session-registry"
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600


# NetworkPolicies: a tiny evaluator over the rendered pods of the namespace --------------------


def _policy_allows(
    policies: list[dict[str, Any]],
    direction: str,
    subject: dict[str, str],
    peer: dict[str, str],
    port: int,
) -> bool:
    """Whether some policy selecting ``subject`` lets traffic in ``direction`` with an
    in-namespace ``peer`` on ``port``. A peer with a namespaceSelector is another namespace."""
    kind = "Ingress" if direction == "ingress" else "Egress"
    key = "from" if direction == "ingress" else "to"
    for policy in policies:
        spec = policy["spec"]
        if kind not in spec["policyTypes"] or not _matches(spec["podSelector"], subject):
            continue
        for rule in spec.get(direction, []):
            ports = [p["port"] for p in rule.get("ports", [])]
            if ports and port not in ports:
                continue
            peers = rule.get(key)
            if peers is None:
                return True
            for p in peers:
                if "namespaceSelector" in p or "ipBlock" in p:
                    continue
                if _matches(p.get("podSelector", {}), peer):
                    return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_flows_pricewire_needs(overlay: str) -> None:
    docs = _overlay(overlay)
    policies = _kind(docs, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in deny)
    labels = {
        w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in _workloads(docs)
    }

    def allowed(src: str, dst: str, port: int) -> bool:
        return _policy_allows(
            policies, "egress", labels[src], labels[dst], port
        ) and _policy_allows(policies, "ingress", labels[dst], labels[src], port)

    for service in SERVICES:
        assert allowed(service, "nats", 4222), f"{service} cannot reach NATS"
        assert not allowed("nats", service, 8000)
    assert allowed("nats", "nats", 6222), "NATS cluster routes"
    for src in SERVICES:
        for dst in SERVICES:
            assert not allowed(src, dst, 8000), f"{src} -> {dst}:8000 is not needed"


# -- Prometheus: rules, config, metric names -----------------------------------------------------


def _promtool() -> str:
    return _tool("promtool", "promtool")


def test_alert_rules_pass_promtool_check() -> None:
    result = _run([_promtool(), "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_unit_tests_pass() -> None:
    tests = DEPLOY / "prometheus" / "tests" / "pricewire.rules.test.yml"
    result = _run([_promtool(), "test", "rules", str(tests)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_issue_alerts_exist() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert {
        "PricewireEdgeDown",
        "PricewireProvidersMostlyOffline",
        "PricewireNatsDisconnected",
        "PricewireFanoutLatencyHigh",
    } <= alerts


def test_kubernetes_prometheus_rule_is_the_rules_file() -> None:
    rule = _one(_render("base"), "PrometheusRule", "pricewire")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"], (
        "k8s/base/monitoring/prometheusrule.yaml differs from deploy/prometheus/rules: copy the "
        "groups over"
    )


def test_prometheus_config_is_valid_and_scrapes_every_service(tmp_path: Path) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(RULES)]  # the container path, pointed at the repository
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = _run([_promtool(), "check", "config", str(local)])
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    for service in SERVICES:
        assert jobs[service] == [f"{service}:8000"]
    assert "nats" in jobs


def _exposed_metric_names() -> set[str]:
    """Every series name the code can expose, from its Counter/Gauge/Histogram definitions
    and the metric families its collectors yield (``CounterMetricFamily(...)``, ...)."""
    names: set[str] = set()
    pattern = re.compile(
        r"\b(Counter|Gauge|Histogram|Summary)(?:MetricFamily)?\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\""
    )
    for root in ("libs", "services"):
        for path in (REPO / root).rglob("*.py"):
            if "tests" in path.parts:
                continue
            for kind, name in pattern.findall(path.read_text(encoding="utf-8")):
                if kind == "Counter":
                    names.add(name.removesuffix("_total") + "_total")
                elif kind in ("Histogram", "Summary"):
                    names |= {name, f"{name}_bucket", f"{name}_sum", f"{name}_count"}
                else:
                    names.add(name)
    return names


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


@pytest.mark.parametrize("source", ["dashboard", "alert rules"])
def test_every_pricewire_metric_queried_exists_in_the_code(source: str) -> None:
    exprs = _dashboard_exprs() if source == "dashboard" else _rule_exprs()
    known = _exposed_metric_names()
    used = {m for e in exprs for m in re.findall(r"\bpricewire_[a-z0-9_]+", e)}
    missing = sorted(used - known)
    assert not missing, f"the {source} queries metrics no service defines: {missing}"


# -- Grafana ----------------------------------------------------------------------------------


def test_dashboard_json_is_a_provisionable_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "pricewire-overview"
    assert dashboard["title"] == "Pricewire"
    assert isinstance(dashboard["schemaVersion"], int)
    assert "id" not in dashboard or dashboard["id"] is None, "provisioned dashboards have no id"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("connections", "client type", "sessions", "messages", "fan-out", "slow"):
        assert topic in titles, f"no panel about {topic}"
    for topic in ("providers online", "breaker", "provider latency", "nats", "latency"):
        assert topic in titles, f"no panel about {topic}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool has no "check this expression": wrap every query in a recording rule
    grafana_vars = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
    rules = []
    for i, query in enumerate(_dashboard_exprs()):
        expr = query
        for var, value in grafana_vars.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run([_promtool(), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_dashboard_folder() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((provisioning / "dashboards" / "pricewire.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    compose = _compose_file()
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    config_map = _one(_render("base"), "ConfigMap", "grafana-dashboard-pricewire")
    assert json.loads(config_map["data"]["pricewire.json"]) == json.loads(DASHBOARD.read_text())
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"


# -- Compose, gateway, image ----------------------------------------------------------------------


def _compose_file() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def _compose_cmd() -> list[str]:
    docker = shutil.which("docker")
    if docker and _run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.fail(INSTALL["compose"], pytrace=False)


def _clean_env() -> dict[str, str]:
    """This process's environment without what would change how Compose reads the file."""
    prefixes = ("PRICEWIRE_", "COMPOSE_", "PORT", "GRAFANA_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@pytest.mark.parametrize("profile", [None, "simulated"])
def test_compose_file_is_valid(profile: str | None) -> None:
    cmd = [*_compose_cmd(), "-f", str(REPO / "docker-compose.yml")]
    if profile:
        cmd += ["--profile", profile]
    env = _clean_env()
    result = _run([*cmd, "config", "-q"], env=env, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = _run([*cmd, "config", "--services"], env=env, cwd=REPO).stdout.split()
    # (docker-compose v1 lists profiled services whatever the profile; profiles are checked on
    # the file itself below)
    assert {*SERVICES, "nats", "gateway", "prometheus", "grafana"} <= set(listed)


def test_compose_runs_every_service_from_the_one_image_as_non_root() -> None:
    services = _compose_file()["services"]
    for name, module in SERVICES.items():
        service = services[name]
        assert service["command"] == ["python", "-m", module]
        assert service["image"] == services["ws-edge"]["image"]
        assert service["read_only"] is True and service["user"] == "10001:10001"
        assert service["environment"]["PRICEWIRE_NATS_URL"] == "nats://nats:4222"
        assert service["depends_on"]["nats"]["condition"] == "service_healthy"
    simulator = services["provider-simulator"]
    assert simulator["command"] == ["python", "-m", "pricewire_ingest.simulator"]
    assert simulator["profiles"] == ["simulated"]
    assert "--jetstream" in services["nats"]["command"]
    gateway_conf = "./deploy/nginx/default.conf:/etc/nginx/conf.d/default.conf:ro"
    assert gateway_conf in services["gateway"]["volumes"]


def test_nginx_gateway_config_passes_nginx_t(tmp_path: Path) -> None:
    nginx = _tool("nginx", "nginx")
    conf = (DEPLOY / "nginx" / "default.conf").read_text()
    # the upstream names only resolve inside compose's network
    for service in ("ws-edge", "session-registry"):
        conf = conf.replace(f"server {service}:8000", "server 127.0.0.1:8000")
    (tmp_path / "gateway.conf").write_text(conf)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  include {tmp_path}/gateway.conf;\n}}\n"
    )
    result = _run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-e", f"{tmp_path}/error.log", "-c", str(main)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_nginx_gateway_routes_api_to_the_registry_and_the_rest_to_the_edge() -> None:
    conf = (DEPLOY / "nginx" / "default.conf").read_text()
    locations = dict(
        re.findall(r"location\s+(?:=\s+)?(\S+)\s*\{[^}]*?proxy_pass\s+http://(\w+);", conf)
    )
    assert locations["/api/"] == "session_registry"
    assert locations["/docs"] == locations["/openapi.json"] == "session_registry"
    assert locations["/"] == "ws_edge"
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf


def _workspace_members() -> list[Path]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members: list[Path] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += [p for p in sorted(REPO.glob(pattern)) if (p / "pyproject.toml").exists()]
    return members


def test_dockerfile_builds_from_the_lock_as_non_root_with_a_health_check() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for member in _workspace_members():
        manifest = member.relative_to(REPO) / "pyproject.toml"
        assert f"COPY {manifest} {member.relative_to(REPO)}/" in dockerfile, (
            f"the Dockerfile must copy {manifest} before `uv sync --frozen`"
        )
    syncs = re.findall(r"uv sync ([^\n]+)", dockerfile)
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), "the image runs as root"
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD", dockerfile, re.MULTILINE)
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "**/tests/" in ignore and "*" in ignore


def test_every_service_command_names_a_runnable_module() -> None:
    modules = [*SERVICES.values(), "pricewire_ingest.simulator"]
    for module in modules:
        path = module.replace(".", "/")
        found = [
            m
            for m in _workspace_members()
            if (m / path / "__main__.py").exists() or (m / f"{path}.py").exists()
        ]
        assert found, f"`python -m {module}` has no __main__ in the workspace"


# -- every PRICEWIRE_* variable we set is a real setting -----------------------------------------

#: module -> the settings class its main() builds
SETTINGS = {
    "pricewire_edge": "pricewire_edge.settings:EdgeSettings",
    "pricewire_registry": "pricewire_registry.settings:RegistrySettings",
    "pricewire_stats": "pricewire_stats.settings:StatsSettings",
    "pricewire_ingest": "pricewire_ingest.settings:IngestSettings",
    "pricewire_ingest.simulator": "pricewire_ingest.simulator.settings:SimulatorSettings",
}
#: stand-ins for values Kubernetes fills in at run time (downward API, Secrets)
RUNTIME_VALUES = {
    "PRICEWIRE_INSTANCE_ID": "ws-edge-6d9f7c-x2x9q",
    "PRICEWIRE_SHARD_INDEX": "0",
    "PRICEWIRE_BROADCAST_TOKEN": "a-broadcast-token-of-enough-length",
}


def _settings_class(module: str) -> Any:
    import importlib

    path, name = SETTINGS[module].split(":")
    return getattr(importlib.import_module(path), name)


def _env_names(settings_class: Any) -> set[str]:
    """PRICEWIRE_<FIELD>, and PRICEWIRE_<FIELD>__<SUBFIELD> for a nested settings model."""
    from pydantic import BaseModel

    names = set()
    for field, info in settings_class.model_fields.items():
        names.add(f"PRICEWIRE_{field.upper()}")
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {
                f"PRICEWIRE_{field.upper()}__{sub.upper()}" for sub in annotation.model_fields
            }
    return names


def _deployed_envs() -> Iterator[tuple[str, str, dict[str, str]]]:
    """(where, module, environment) of every Pricewire process in Compose and the overlays
    (an empty value: a variable passed through from the shell)."""
    rendered = _run(
        [
            *_compose_cmd(),
            "-f",
            str(REPO / "docker-compose.yml"),
            "--profile",
            "simulated",
            "config",
        ],
        env=_clean_env(),
        cwd=REPO,
    )
    assert rendered.returncode == 0, rendered.stderr
    for name, service in yaml.safe_load(rendered.stdout)["services"].items():
        command = service.get("command", [])
        if command[:2] == ["python", "-m"]:
            # a variable without a value is passed through from the shell when set there: its
            # name must still be a setting
            env = {k: "" if v is None else str(v) for k, v in service["environment"].items()}
            yield f"compose {name}", command[2], env
    for overlay in OVERLAYS:
        docs = _overlay(overlay)
        config = next(
            d for d in _kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("pricewire-")
        )
        for workload in _workloads(docs):
            for container in _containers(workload):
                command = container.get("command", [])
                if command[:2] != ["python", "-m"]:
                    continue
                env = dict(config["data"])
                for key, value in _env(container).items():
                    env[key] = value if isinstance(value, str) else RUNTIME_VALUES[key]
                yield f"{overlay} {workload['metadata']['name']}", command[2], env


def test_every_pricewire_variable_deployed_is_a_setting_with_a_valid_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = set()
    for where, module, env in _deployed_envs():
        settings_class = _settings_class(module)
        unknown = {k for k in env if k.startswith("PRICEWIRE_")} - _env_names(settings_class)
        assert not unknown, f"{where}: {sorted(unknown)} are not settings of {module}"
        for key in [k for k in os.environ if k.startswith("PRICEWIRE_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if value:
                monkeypatch.setenv(key, value)
        settings_class()  # raises on a value the service would refuse at start
        seen.add(module)
    assert seen == set(SETTINGS)


# -- AsyncAPI ----------------------------------------------------------------------------------


def test_asyncapi_document_is_valid_against_the_official_asyncapi_3_schema() -> None:
    import jsonschema

    if not ASYNCAPI_SCHEMA.exists():
        pytest.fail(INSTALL["asyncapi"], pytrace=False)
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    document = yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.")
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:20]
    )


# -- live /metrics through promtool -----------------------------------------------------------


def promtool_check_metrics(text: str) -> list[str]:
    """Problems `promtool check metrics` finds in an exposition (empty: clean).

    promtool lints naming (``_total`` counters, base units, ...) and help text, and exits
    non-zero when it finds anything.
    """
    result = subprocess.run(
        [_promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = (result.stdout + result.stderr).splitlines()
    problems = [line.strip() for line in lines if line.strip()]
    if result.returncode != 0 and not problems:
        problems = [f"promtool exited with {result.returncode}"]
    return problems


def test_promtool_check_metrics_helper_flags_a_badly_named_counter() -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    registry = CollectorRegistry()
    Gauge("pricewire_example_seconds", "A well-named gauge", registry=registry).set(1)
    assert promtool_check_metrics(generate_latest(registry).decode()) == []
    bad = "# HELP requests Requests\n# TYPE requests counter\nrequests 1\n"
    assert any("_total" in p for p in promtool_check_metrics(bad))
    Counter("pricewire_example_total", "", registry=registry).inc()
    assert promtool_check_metrics(generate_latest(registry).decode())


def _service_env(nats_url: str) -> dict[str, str]:
    return {
        "PRICEWIRE_NATS_URL": nats_url,
        "PRICEWIRE_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def simulator(nats_server: Any, tmp_path: Path) -> Iterator[Any]:
    from pricewire_common.testing import ServiceProcess

    proc = ServiceProcess(
        "pricewire_ingest.simulator",
        env=_service_env(nats_server.url),
        log_file=tmp_path / "simulator.log",
    )
    proc.start(wait_ready=False)
    try:
        yield proc
    finally:
        proc.stop()


def _wait_http_ok(proc: Any, path: str, timeout_s: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.module} exited with {proc.proc.returncode}")
        if proc.status(path) == 200:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{proc.module} {path} did not answer 200 within {timeout_s}s")


@pytest.mark.slow
@pytest.mark.parametrize("service", list(SERVICES))
def test_live_metrics_of_every_service_pass_promtool(
    service: str, nats_server: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from pricewire_common.testing import ServiceProcess

    _promtool()
    env = _service_env(nats_server.url)
    if service == "market-ingest":
        # never the real provider APIs in a test: the simulator answers in their shapes
        sim = request.getfixturevalue("simulator")
        _wait_http_ok(sim, "/health")
        env |= {
            "PRICEWIRE_PROVIDER_BASE_URL_OVERRIDE": sim.url(),
            "PRICEWIRE_SHARD_INDEX": "0",
            "PRICEWIRE_SHARD_COUNT": "1",
        }
    proc = ServiceProcess(SERVICES[service], env=env, log_file=tmp_path / f"{service}.log")
    try:
        proc.start(timeout_s=60)
        with urllib.request.urlopen(proc.url("/metrics"), timeout=10) as response:
            assert response.status == 200
            text = response.read().decode()
    except Exception:
        log = (tmp_path / f"{service}.log").read_text(errors="replace")[-4000:]
        sys.stderr.write(f"--- {service} log ---\n{log}\n")
        raise
    finally:
        code = proc.stop()
    assert "pricewire_nats_connected" in text
    problems = promtool_check_metrics(text)
    assert not problems, f"{service} /metrics:\n" + "\n".join(problems)
    assert code == 0, f"{service} exited with {code} after SIGTERM"


# -- the documented example for other teams ---------------------------------------------------


async def test_the_documented_nats_py_example_prints_the_last_prices_then_updates(
    nats_server: Any, nats_client: Any, tmp_path: Path
) -> None:
    import asyncio

    from pricewire_common.streams import ensure_streams
    from pricewire_contracts import PriceData, PriceUpdate, SubjectCatalog

    doc = (REPO / "docs" / "operations.md").read_text()
    section = doc[doc.index("## For other teams") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python example in the section for other teams"
    script = tmp_path / "example.py"
    script.write_text(match.group(1))

    subjects = SubjectCatalog()
    js = nats_client.jetstream()
    await ensure_streams(js, subjects)

    async def publish(symbol: str, price: float) -> None:
        update = PriceUpdate(data=PriceData(symbol=symbol, price=price))
        await js.publish(subjects.price(symbol), update.model_dump_json(exclude_none=True).encode())

    await publish("BTC", 43000.0)
    await publish("BTC", 43250.5)  # only this one is the last BTC price
    await publish("ETH", 2300.0)

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        env={**os.environ, "NATS_URL": nats_server.url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None
    try:

        async def line() -> list[str]:
            raw = await asyncio.wait_for(stdout.readline(), timeout=30)
            assert raw, (await stderr.read()).decode()
            return raw.decode().split()

        snapshot = [await line(), await line()]
        assert sorted((s[0], s[1]) for s in snapshot) == [("BTC", "43250.5"), ("ETH", "2300.0")]
        await publish("BTC", 44000.0)
        assert (await line())[:2] == ["BTC", "44000.0"]
    finally:
        proc.kill()
        await proc.wait()
