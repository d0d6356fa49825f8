"""The Helm chart (deploy/helm/seedbed), checked offline: no cluster, no Docker, no helm binary.

- Rendered and linted by Helm's own Go SDK (helm-python-sdk), with the chart's values schema.
- Every core object validated strictly against Kubernetes' schema (kubernetes-validate) for
  KUBE_VERSION; the RayCluster against KubeRay's CRD schema (vendored, deploy/helm/kuberay/), with
  unknown fields refused as `kubectl apply --validate=strict` would, and its pod templates as
  PodTemplates.
- Policies: the Docker daemon sidecar is the only privileged container; every container has probes
  and resources; secrets reach containers only through secretKeyRef; the coordinator runs as a
  non-root user on a read-only root filesystem; network policies fence the coordinator and the Ray
  pods (nobody else reaches the daemon's port).
- Bad values fail with a message naming the value.
- The script that makes each worker pod's Docker TLS material, run here: the certificates it makes
  carry a mutual TLS handshake on 127.0.0.1.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "seedbed"
RAYCLUSTER_SCHEMA = ROOT / "deploy" / "helm" / "kuberay" / "raycluster-v1.schema.json"
ENTRYPOINT = ROOT / "deploy" / "images" / "entrypoint.sh"

KUBE_VERSION = "1.30"
RELEASE = "demo"
NAMESPACE = "seeding"

STORE_PASSWORD = "pw-7f3a9c1e-not-a-real-one"
STORE_URL = f"postgresql+psycopg://seedbed:{STORE_PASSWORD}@postgres.db.svc:5432/seedbed"
SECRET_KEY = "k" * 42 + "Q="  # the shape of a Fernet key
ADMIN_KEY = "sbk_00000000000000ab_chart-test-admin-secret"

# The least an install needs.
MINIMAL: dict[str, Any] = {
    "images": {"coordinator": {"tag": "c0ffee01"}, "worker": {"tag": "beef0002"}},
    "secrets": {"storeUrl": STORE_URL, "secretKey": SECRET_KEY},
}

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "tls": {
        "coordinator": {
            "tls": {"enabled": True, "secretName": "seedbed-tls", "caKey": "ca.crt", "clientCaKey": "ca.crt"}
        }
    },
    "existing-secret": {"secrets": {"existingSecret": "seedbed-store", "storeUrl": "", "secretKey": ""}},
    "admin-key-registry-autoscaling": {
        "images": {"registry": "registry.example.com/seedbed", "pullSecrets": ["regcred"]},
        "secrets": {"adminApiKey": ADMIN_KEY},
        "ray": {"enableInTreeAutoscaling": True},
        "networkPolicy": {
            "coordinator": {
                "grpcFrom": [{"namespaceSelector": {"matchLabels": {"team": "qa"}}}],
                "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
            },
            "ray": {"metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
        },
    },
}

KINDS = {"Deployment", "Service", "Secret", "ServiceAccount", "ConfigMap", "NetworkPolicy", "RayCluster"}
# With an existing Secret the chart makes none.
EXPECTED_KINDS = {name: KINDS - ({"Secret"} if name == "existing-secret" else set()) for name in VARIANTS}

SECRET_ENV_NAME = re.compile(r"KEY|PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|STORE_URL|DSN")


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render_text(chart: helm.Chart, values: dict[str, Any]) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE)


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path, text in sorted(render_text(chart, values).items()):
        if not path.endswith(".yaml"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def variant_values(name: str) -> dict[str, Any]:
    return merged(MINIMAL, VARIANTS[name])


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    names = [d["metadata"]["name"] for d in found]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {names}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pod spec the release makes, by a readable name."""
    specs = {"coordinator": one(docs, "Deployment")["spec"]["template"]["spec"]}
    ray = one(docs, "RayCluster")["spec"]
    specs["ray-head"] = ray["headGroupSpec"]["template"]["spec"]
    for group in ray["workerGroupSpecs"]:
        specs[f"ray-worker/{group['groupName']}"] = group["template"]["spec"]
    return specs


def containers(spec: dict[str, Any], *, init: bool = False) -> list[dict[str, Any]]:
    return list(spec.get("initContainers", []) if init else spec["containers"])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def strict_crd_schema(schema: Any) -> Any:
    """The CRD schema with unknown fields refused wherever the API server would prune them (an
    object with declared properties and no x-kubernetes-preserve-unknown-fields): a misspelt field
    fails here instead of vanishing on apply."""
    if isinstance(schema, list):
        return [strict_crd_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict_crd_schema(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def raycluster_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(RAYCLUSTER_SCHEMA.read_text())
    # The vendored file is the v1 openAPIV3Schema of KubeRay's RayCluster CRD (see SOURCE.md).
    assert set(schema["properties"]) >= {"apiVersion", "kind", "metadata", "spec", "status"}
    assert "workerGroupSpecs" in schema["properties"]["spec"]["properties"]
    return jsonschema.Draft7Validator(strict_crd_schema(schema))


# -- rendering, linting, schemas -------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lint_finds_nothing(variant: str) -> None:
    report = helm.lint(CHART, variant_values(variant), strict=True, kube_version=f"v{KUBE_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not problems and not report["errors"], f"helm lint: {problems or report['errors']}"


def test_the_chart_as_shipped_lints_clean() -> None:
    # `helm lint deploy/helm/seedbed`, no values: what is required is only reported by a render.
    report = helm.lint(CHART, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], f"helm lint: {problems or report['errors']}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_renders_the_expected_kinds(chart: helm.Chart, variant: str) -> None:
    kinds = {d["kind"] for d in render(chart, variant_values(variant))}
    assert kinds == EXPECTED_KINDS[variant]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_core_objects_are_valid_kubernetes(chart: helm.Chart, variant: str) -> None:
    checked = 0
    for doc in render(chart, variant_values(variant)):
        if doc["apiVersion"].startswith("ray.io/"):
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = list(exc.absolute_path)
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc.message} at {where}")
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_raycluster_matches_kuberay_crd(
    chart: helm.Chart, variant: str, raycluster_validator: jsonschema.Draft7Validator
) -> None:
    cluster = one(render(chart, variant_values(variant)), "RayCluster")
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in raycluster_validator.iter_errors(cluster)]
    assert not errors, "RayCluster against KubeRay's CRD schema:\n" + "\n".join(errors)


def test_crd_check_refuses_a_misspelt_field(
    chart: helm.Chart, raycluster_validator: jsonschema.Draft7Validator
) -> None:
    cluster = one(render(chart, MINIMAL), "RayCluster")
    cluster["spec"]["workerGroupSpecs"][0]["minReplica"] = 1
    cluster["spec"]["workerGroupSpecs"][0]["maxReplicas"] = "four"
    messages = [e.message for e in raycluster_validator.iter_errors(cluster)]
    assert any("minReplica" in m for m in messages), messages
    assert any("'four' is not of type 'integer'" in m for m in messages), messages


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_raycluster_pod_templates_are_valid_pod_templates(chart: helm.Chart, variant: str) -> None:
    spec = one(render(chart, variant_values(variant)), "RayCluster")["spec"]
    templates = {"head": spec["headGroupSpec"]["template"]}
    templates.update({g["groupName"]: g["template"] for g in spec["workerGroupSpecs"]})
    for name, template in templates.items():
        doc = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"pod template {name}: {exc.message} at {list(exc.absolute_path)}")


# -- policies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_only_the_docker_daemon_is_privileged(chart: helm.Chart, variant: str) -> None:
    privileged = []
    for pod, spec in pod_specs(render(chart, variant_values(variant))).items():
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), pod
        assert all("hostPath" not in v for v in spec.get("volumes", [])), f"{pod} mounts a host path"
        for c in containers(spec) + containers(spec, init=True):
            context = c.get("securityContext", {})
            if context.get("privileged") or context.get("allowPrivilegeEscalation", True) is not False:
                privileged.append(f"{pod}/{c['name']}")
            if not context.get("privileged"):
                capabilities = context.get("capabilities", {})
                assert capabilities.get("drop") == ["ALL"], f"{pod}/{c['name']} keeps capabilities"
                assert not capabilities.get("add"), f"{pod}/{c['name']} adds capabilities"
    assert privileged == ["ray-worker/sandboxes/docker"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_container_has_probes_and_resources(chart: helm.Chart, variant: str) -> None:
    for pod, spec in pod_specs(render(chart, variant_values(variant))).items():
        for c in containers(spec):
            ports = c.get("ports", [])
            declared = {p["containerPort"] for p in ports} | {p["name"] for p in ports}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in c, f"{pod}/{c['name']} has no {probe}"
                # A network probe asks a port the container serves.
                for how in ("tcpSocket", "grpc", "httpGet"):
                    if how in c[probe]:
                        port = c[probe][how]["port"]
                        assert port in declared, f"{pod}/{c['name']} {probe} asks port {port}, not declared"
        for c in containers(spec) + containers(spec, init=True):
            for part in ("requests", "limits"):
                got = c.get("resources", {}).get(part, {})
                assert {"cpu", "memory"} <= set(got), f"{pod}/{c['name']} lacks resources.{part}: {got}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_secrets_reach_containers_only_through_secret_refs(chart: helm.Chart, variant: str) -> None:
    values = variant_values(variant)
    docs = render(chart, values)
    for pod, spec in pod_specs(docs).items():
        secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
        for c in containers(spec) + containers(spec, init=True):
            assert not c.get("envFrom"), f"{pod}/{c['name']}: envFrom"
            secret_dirs = [m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] in secret_volumes]
            for e in c.get("env", []):
                if not SECRET_ENV_NAME.search(e["name"]) or e["name"] == "DOCKER_TLS_VERIFY":
                    continue
                if e["name"].endswith("_FILE"):
                    # A path, to a file mounted from a Secret.
                    assert any(e["value"].startswith(f"{d}/") for d in secret_dirs), (
                        f"{pod}/{c['name']}: {e['name']} names no file of a mounted Secret"
                    )
                else:
                    assert "value" not in e and "secretKeyRef" in e.get("valueFrom", {}), (
                        f"{pod}/{c['name']}: {e['name']} is not read from a Secret"
                    )
    # The secret values themselves appear nowhere but in the chart's own Secret (base64), and not
    # even there with an existing Secret.
    for doc in docs:
        text = yaml.safe_dump(doc)
        for secret in (STORE_PASSWORD, SECRET_KEY, ADMIN_KEY):
            assert secret not in text, f"{doc['kind']} {doc['metadata']['name']} holds a secret in clear"
        for secret in (STORE_URL, SECRET_KEY, ADMIN_KEY):
            if doc["kind"] != "Secret":
                assert base64.b64encode(secret.encode()).decode() not in text, (
                    f"{doc['kind']} {doc['metadata']['name']} holds a secret in base64"
                )
    env = env_of(one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    secret_name = values["secrets"].get("existingSecret") or f"{RELEASE}-seedbed"
    for name in ("SEEDBED_STORE_URL", "SEEDBED_SECRET_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret_name
    if values["secrets"].get("existingSecret"):
        assert env["SEEDBED_ADMIN_API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
        assert not [d for d in docs if d["kind"] == "Secret"]
    else:
        stored = {k: base64.b64decode(v).decode() for k, v in one(docs, "Secret")["data"].items()}
        assert stored["store-url"] == STORE_URL and stored["secret-key"] == SECRET_KEY
        assert ("SEEDBED_ADMIN_API_KEY" in env) == bool(values["secrets"].get("adminApiKey"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_coordinator_runs_unprivileged_and_migrates_first(chart: helm.Chart, variant: str) -> None:
    docs = render(chart, variant_values(variant))
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    (migrate,) = containers(spec, init=True)
    (coordinator,) = containers(spec)
    assert (migrate["name"], migrate["args"]) == ("migrate", ["migrate"])
    assert coordinator["args"] == ["coordinator"]
    for c in (migrate, coordinator):
        context = c["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "runAsUser" not in context or context["runAsUser"] != 0
        assert c["command"] == ["tini", "--", "seedbed-entrypoint"]
    # migrate sees the same store and key as the coordinator.
    for name in ("SEEDBED_STORE_URL", "SEEDBED_SECRET_KEY", "SEEDBED_DATA_DIR"):
        assert env_of(migrate)[name] == env_of(coordinator)[name]
    # Writable places are scratch volumes.
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in coordinator["volumeMounts"]:
        assert "emptyDir" in volumes[mount["name"]] or mount.get("readOnly"), mount


def test_coordinator_probes_ask_grpc_or_tcp_and_readiness_the_rest_health(chart: helm.Chart) -> None:
    # Startup and liveness ask gRPC; readiness asks the REST face's health, plaintext either way.
    rest_health = {"path": "/v1/healthz", "port": "http"}
    plain = one(render(chart, MINIMAL), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe"):
        assert plain[probe]["grpc"] == {"port": 50051}
    assert set(plain["readinessProbe"]) & {"grpc", "tcpSocket", "httpGet"} == {"httpGet"}
    assert plain["readinessProbe"]["httpGet"] == rest_health
    assert not any(k.startswith("SEEDBED_TLS") for k in env_of(plain))

    docs = render(chart, variant_values("tls"))
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    tls = spec["containers"][0]
    for probe in ("startupProbe", "livenessProbe"):
        assert "grpc" not in tls[probe] and tls[probe]["tcpSocket"] == {"port": "grpc"}
    assert tls["readinessProbe"]["httpGet"] == rest_health
    env = env_of(tls)
    mount = next(m for m in tls["volumeMounts"] if m["name"] == "tls")
    assert mount["readOnly"] is True
    assert env["SEEDBED_TLS_CERT_FILE"]["value"] == f"{mount['mountPath']}/tls.crt"
    assert env["SEEDBED_TLS_KEY_FILE"]["value"] == f"{mount['mountPath']}/tls.key"
    assert env["SEEDBED_TLS_CA_FILE"]["value"] == f"{mount['mountPath']}/ca.crt"
    assert env["SEEDBED_TLS_CLIENT_CA_FILE"]["value"] == f"{mount['mountPath']}/ca.crt"
    volume = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "seedbed-tls"


def test_coordinator_joins_the_ray_cluster_on_the_chart_ports(chart: helm.Chart) -> None:
    docs = render(chart, MINIMAL)
    cluster = one(docs, "RayCluster")
    coordinator = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(coordinator)
    # KubeRay names the head's Service <cluster>-head-svc.
    assert env["SEEDBED_RAY_HEAD"]["value"] == f"{cluster['metadata']['name']}-head-svc:6379"
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["port"] == "6379"
    # The entry point's coordinator role reads these variables: the chart sets them all, to the
    # ports the head and the workers are started with.
    entrypoint = ENTRYPOINT.read_text()
    read = set(re.findall(r"\$\{(SEEDBED_RAY_[A-Z_]+_PORT):-", entrypoint))
    assert read, f"{ENTRYPOINT} names no SEEDBED_RAY_*_PORT variable"
    flag_of = dict(re.findall(r"--([a-z-]+-port)=\"\$\{(SEEDBED_RAY_[A-Z_]+_PORT):-", entrypoint))
    flag_of = {var: flag for flag, var in flag_of.items()}
    for var in read - {"SEEDBED_RAY_GCS_PORT"}:
        assert var in env, f"the coordinator does not set {var}"
        for params in (
            cluster["spec"]["headGroupSpec"]["rayStartParams"],
            cluster["spec"]["workerGroupSpecs"][0]["rayStartParams"],
        ):
            assert params[flag_of[var]] == env[var]["value"], var


def coordinator_env(chart: helm.Chart, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return env_of(one(render(chart, values), "Deployment")["spec"]["template"]["spec"]["containers"][0])


def test_coordinator_binds_every_interface_and_advertises_its_service(chart: helm.Chart) -> None:
    docs = render(chart, MINIMAL)
    service = one(docs, "Service")
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert grpc["port"] == 50051
    env = coordinator_env(chart, MINIMAL)
    # Bound on 0.0.0.0 so `kubectl port-forward` (which dials the pod's loopback) reaches it.
    assert env["SEEDBED_LISTEN"]["value"] == "0.0.0.0:50051"
    # The workers call back through the Service, by its cluster DNS name.
    assert env["SEEDBED_ADVERTISE_ADDRESS"]["value"] == f"{service['metadata']['name']}.{NAMESPACE}.svc:50051"
    assert "POD_IP" not in env and not any("$(POD_IP)" in str(e.get("value", "")) for e in env.values())

    notes = render_text(chart, MINIMAL)["seedbed/templates/NOTES.txt"]
    assert f"call the coordinators back at {service['metadata']['name']}.{NAMESPACE}.svc:50051" in notes
    assert f"port-forward svc/{service['metadata']['name']} 50051 8080" in notes

    # Another gRPC port moves the bind, the Service and the advertised port together.
    moved = merged(MINIMAL, {"coordinator": {"grpcPort": 7443}})
    env = coordinator_env(chart, moved)
    assert env["SEEDBED_LISTEN"]["value"] == "0.0.0.0:7443"
    assert env["SEEDBED_ADVERTISE_ADDRESS"]["value"] == f"{service['metadata']['name']}.{NAMESPACE}.svc:7443"
    ports = {p["name"]: p["port"] for p in one(render(chart, moved), "Service")["spec"]["ports"]}
    assert ports["grpc"] == 7443

    # The REST API and MCP: bound on every interface, behind the Service's `http` port.
    env = coordinator_env(chart, MINIMAL)
    assert env["SEEDBED_REST_LISTEN"]["value"] == "0.0.0.0:8080"
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    assert (http["port"], http["targetPort"], http["appProtocol"]) == (8080, "http", "http")
    host = f"{service['metadata']['name']}.{NAMESPACE}.svc"
    assert f"REST API: http://{host}:8080/v1" in notes and f"MCP endpoint: http://{host}:8080/mcp" in notes
    moved = merged(MINIMAL, {"coordinator": {"restPort": 9080}})
    docs = render(chart, moved)
    coordinator = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(coordinator)["SEEDBED_REST_LISTEN"]["value"] == "0.0.0.0:9080"
    assert {"name": "http", "containerPort": 9080, "protocol": "TCP"} in coordinator["ports"]
    ports = {p["name"]: p["port"] for p in one(docs, "Service")["spec"]["ports"]}
    assert ports == {"grpc": 50051, "metrics": 9464, "http": 9080}
    policy = one(docs, "NetworkPolicy", "-coordinator")["spec"]
    assert [{"protocol": "TCP", "port": 9080}] in [rule["ports"] for rule in policy["ingress"]]
    assert f"http://{host}:9080/mcp" in render_text(chart, moved)["seedbed/templates/NOTES.txt"]

    # coordinator.advertiseAddress replaces the default; the bind stays on every interface.
    custom = merged(MINIMAL, {"coordinator": {"advertiseAddress": "seedbed-grpc.example.internal:443"}})
    env = coordinator_env(chart, custom)
    assert env["SEEDBED_ADVERTISE_ADDRESS"]["value"] == "seedbed-grpc.example.internal:443"
    assert env["SEEDBED_LISTEN"]["value"] == "0.0.0.0:50051"


def test_with_tls_the_notes_say_the_certificate_names_the_advertised_host(chart: helm.Chart) -> None:
    notes = render_text(chart, variant_values("tls"))["seedbed/templates/NOTES.txt"]
    assert "the server's certificate must name that host" in notes
    assert "the server's certificate" not in render_text(chart, MINIMAL)["seedbed/templates/NOTES.txt"]


def test_the_coordinator_reads_the_listen_and_advertise_settings_the_chart_sets(
    chart: helm.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seedbed.coordinator.settings import CoordinatorSettings

    env = coordinator_env(chart, MINIMAL)
    for name in (
        "SEEDBED_LISTEN",
        "SEEDBED_ADVERTISE_ADDRESS",
        "SEEDBED_METRICS_LISTEN",
        "SEEDBED_REST_LISTEN",
    ):
        monkeypatch.setenv(name, env[name]["value"])
    settings = CoordinatorSettings()
    assert settings.listen == "0.0.0.0:50051"
    assert (settings.metrics_listen, settings.rest_listen) == ("0.0.0.0:9464", "0.0.0.0:8080")
    assert settings.advertise_address == env["SEEDBED_ADVERTISE_ADDRESS"]["value"]


def test_kuberay_runs_the_entrypoint_with_its_generated_command(chart: helm.Chart) -> None:
    cluster = one(render(chart, MINIMAL), "RayCluster")
    assert cluster["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    spec = cluster["spec"]
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        ray = group["template"]["spec"]["containers"][0]  # KubeRay's Ray container is the first
        assert ray["command"] == ["tini", "--", "seedbed-entrypoint"] and ray["args"] == ["kuberay"]
        assert group["template"]["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
        assert "block" not in group["rayStartParams"]  # KubeRay adds --block itself
    entrypoint = ENTRYPOINT.read_text()
    assert re.search(r"^\s*kuberay\)", entrypoint, re.M), "the entry point has no kuberay role"
    assert 'exec bash -c "$KUBERAY_GEN_RAY_START_CMD"' in entrypoint

    head = spec["headGroupSpec"]["rayStartParams"]
    assert (head["num-cpus"], head["include-dashboard"]) == ("0", "false")
    (workers,) = spec["workerGroupSpecs"]
    assert (workers["minReplicas"], workers["replicas"], workers["maxReplicas"]) == (1, 1, 4)
    # KubeRay pastes rayStartParams into a shell command line: the JSON must be quoted for it.
    resources = workers["rayStartParams"]["resources"]
    assert resources.startswith("'") and resources.endswith("'")
    assert json.loads(resources[1:-1]) == {
        "seedbed_sandbox": 2,
        "seedbed_catalog": 2,
        "seedbed_worker_node": 1000,
    }
    assert workers["rayStartParams"]["num-cpus"] == "2"


def test_worker_pod_talks_tls_to_its_own_docker_daemon(chart: helm.Chart) -> None:
    spec = one(render(chart, MINIMAL), "RayCluster")["spec"]["workerGroupSpecs"][0]["template"]["spec"]
    ray, daemon = containers(spec)
    (tls_init,) = containers(spec, init=True)
    env = env_of(ray)
    assert env["DOCKER_HOST"]["value"] == "tcp://127.0.0.1:2376"
    assert env["DOCKER_TLS_VERIFY"]["value"] == "1"
    # The Ray container mounts the client half only, read-only; the daemon the server half.
    (client_mount,) = [m for m in ray["volumeMounts"] if m["name"] == "docker-tls"]
    assert client_mount == {
        "name": "docker-tls",
        "mountPath": env["DOCKER_CERT_PATH"]["value"],
        "subPath": "client",
        "readOnly": True,
    }
    (server_mount,) = [m for m in daemon["volumeMounts"] if m["name"] == "docker-tls"]
    assert server_mount["subPath"] == "server" and server_mount["readOnly"] is True
    args = daemon["args"]
    assert args[0] == "dockerd" and "--tlsverify" in args
    tcp_hosts = [a for a in args if a.startswith("--host=tcp://")]
    assert tcp_hosts == ["--host=tcp://127.0.0.1:2376"], "the daemon must listen on the loopback only"
    server_dir = server_mount["mountPath"]
    assert {f"--tlscacert={server_dir}/ca.pem", f"--tlscert={server_dir}/cert.pem"} <= set(args)
    assert f"--tlskey={server_dir}/key.pem" in args
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["docker-tls"]["emptyDir"]["medium"] == "Memory"
    assert "emptyDir" in volumes["docker-data"]
    assert {"name": "docker-data", "mountPath": "/var/lib/docker"} in daemon["volumeMounts"]
    assert tls_init["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_kubernetes_api_access(chart: helm.Chart, variant: str) -> None:
    values = variant_values(variant)
    docs = render(chart, values)
    assert not [d for d in docs if d["kind"] in {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}]
    accounts = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert len(accounts) == 2 and all(a["automountServiceAccountToken"] is False for a in accounts)
    names = {a["metadata"]["name"] for a in accounts}
    for pod, spec in pod_specs(docs).items():
        if pod == "ray-head" and values.get("ray", {}).get("enableInTreeAutoscaling"):
            # KubeRay's autoscaler sidecar calls the API under the account KubeRay makes for it.
            assert "serviceAccountName" not in spec and "automountServiceAccountToken" not in spec
            continue
        assert spec["serviceAccountName"] in names, pod
        assert spec["automountServiceAccountToken"] is False, pod


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_network_policies_fence_the_coordinator_and_the_daemon(chart: helm.Chart, variant: str) -> None:
    values = variant_values(variant)
    docs = render(chart, values)
    policies = {
        d["metadata"]["name"].removeprefix(f"{RELEASE}-seedbed-"): d["spec"]
        for d in docs
        if d["kind"] == "NetworkPolicy"
    }
    assert set(policies) == {"coordinator", "ray-head", "ray-worker"}
    cluster = one(docs, "RayCluster")["metadata"]["name"]
    coordinator_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]

    def admitted(spec: dict[str, Any]) -> set[int]:
        ports: set[int] = set()
        for rule in spec["ingress"]:
            for p in rule["ports"]:
                ports.update(range(p["port"], p.get("endPort", p["port"]) + 1))
        return ports

    for name, spec in policies.items():
        assert spec["policyTypes"] == ["Ingress"], name
        assert 2376 not in admitted(spec), f"{name} admits the Docker daemon's port"
        assert all(rule.get("ports") for rule in spec["ingress"]), f"{name} has a rule for every port"

    coordinator = policies["coordinator"]
    assert coordinator["podSelector"]["matchLabels"].items() <= coordinator_labels.items()
    assert admitted(coordinator) == {50051, 8080, 9464, *range(6379, 6386), *range(10002, 10201)}
    ray_peers = [
        {"podSelector": {"matchLabels": {"ray.io/cluster": cluster}}},
        {"podSelector": {"matchLabels": coordinator["podSelector"]["matchLabels"]}},
    ]
    grpc_from = values.get("networkPolicy", {}).get("coordinator", {}).get("grpcFrom", [])
    for rule in coordinator["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        if ports == {50051}:
            # Clients as configured (anyone when none are named), and always the release's Ray pods.
            assert rule.get("from", []) == ([*grpc_from, *ray_peers] if grpc_from else [])
        elif ports == {8080}:
            # The REST API and MCP: the same clients; the Ray pods call only gRPC.
            assert rule.get("from", []) == grpc_from
        elif ports == {9464}:
            pass
        else:
            assert rule["from"] == ray_peers, "Ray's ports must admit only the release's Ray pods"

    for node_type in ("head", "worker"):
        spec = policies[f"ray-{node_type}"]
        assert spec["podSelector"]["matchLabels"] == {
            "ray.io/cluster": cluster,
            "ray.io/node-type": node_type,
        }
        for rule in spec["ingress"]:
            if {p["port"] for p in rule["ports"]} != {6385}:
                assert rule["from"] == ray_peers


# -- bad values ------------------------------------------------------------------------------------

# Values the schema refuses: `helm lint` reports them as well as `helm template` and `install`.
SCHEMA_BAD_VALUES = [
    pytest.param({"coordinator": {"replicas": -1}}, "/coordinator/replicas", id="negative-replicas"),
    pytest.param({"secrets": {"storeUrl": "sqlite:///seedbed.db"}}, "/secrets/storeUrl", id="sqlite-store"),
    pytest.param({"secrets": {"secretKey": "not-a-fernet-key"}}, "/secrets/secretKey", id="bad-secret-key"),
    pytest.param(
        {"replicaCount": 2}, "additional properties 'replicaCount' not allowed", id="unknown-top-level-key"
    ),
    pytest.param(
        {"coordinator": {"resoures": {}}},
        "additional properties 'resoures' not allowed",
        id="misspelt-nested-key",
    ),
    pytest.param(
        {"ray": {"workers": {"sandboxSlots": 0}}}, "/ray/workers/sandboxSlots", id="no-sandbox-slots"
    ),
    pytest.param(
        {"coordinator": {"resources": {"limits": {"memory": None}}}},
        "/coordinator/resources/limits",
        id="no-memory-limit",
    ),
    pytest.param({"coordinator": {"logFormat": "xml"}}, "/coordinator/logFormat", id="unknown-log-format"),
    pytest.param({"coordinator": {"restPort": 0}}, "/coordinator/restPort", id="rest-port-zero"),
    pytest.param(
        {"coordinator": {"advertiseAddress": "seedbed.example.internal"}},
        "/coordinator/advertiseAddress",
        id="advertise-without-port",
    ),
    pytest.param(
        {"coordinator": {"listen": "$(POD_IP):50051"}},
        "additional properties 'listen' not allowed",
        id="listen-is-gone",
    ),
]

# Values only the templates can judge (relations between values, values required unless another
# is set). Helm's lint mode turns `required` and `fail` into log lines, so these fail `helm
# template` and `helm install` (a render), not `helm lint`.
TEMPLATE_BAD_VALUES = [
    pytest.param(
        {"ray": {"workers": {"minReplicas": 3, "maxReplicas": 2, "replicas": 2}}},
        "ray.workers.minReplicas (3) must not exceed ray.workers.maxReplicas (2)",
        id="min-above-max",
    ),
    pytest.param(
        {"ray": {"workers": {"replicas": 9}}},
        "ray.workers.replicas (9) must lie between",
        id="replicas-above-max",
    ),
    pytest.param({"secrets": {"storeUrl": ""}}, "secrets.storeUrl is required", id="no-store-url"),
    pytest.param({"secrets": {"secretKey": ""}}, "secrets.secretKey is required", id="no-secret-key"),
    pytest.param({"images": {"worker": {"tag": ""}}}, "images.worker.tag is required", id="no-worker-tag"),
    pytest.param(
        {"coordinator": {"tls": {"enabled": True}}},
        "coordinator.tls.secretName is required",
        id="tls-without-secret",
    ),
    pytest.param(
        {"ray": {"ports": {"nodeManager": 10100}}}, "port 10100 lies inside", id="port-in-worker-range"
    ),
    pytest.param({"coordinator": {"grpcPort": 6380}}, "must all differ", id="port-clash"),
    pytest.param(
        {"coordinator": {"restPort": 9464}}, "coordinator.restPort must all differ", id="rest-port-clash"
    ),
    pytest.param(
        {"coordinator": {"restPort": 10100}}, "port 10100 lies inside", id="rest-port-in-worker-range"
    ),
    *(
        pytest.param(
            {"coordinator": {"advertiseAddress": address}},
            f"coordinator.advertiseAddress ({address}) must be an address the workers in other pods can call",
            id=f"advertise-{address}",
        )
        for address in ("0.0.0.0:50051", "[::]:50051", "localhost:50051", "127.0.0.1:50051")
    ),
]


@pytest.mark.parametrize(("bad", "message"), SCHEMA_BAD_VALUES)
def test_values_the_schema_refuses_fail_lint_and_render(
    chart: helm.Chart, bad: dict[str, Any], message: str
) -> None:
    values = merged(MINIMAL, bad)
    with pytest.raises(helm.HelmValuesError) as caught:
        render_text(chart, values)
    assert message in str(caught.value)
    report = helm.lint(CHART, values, kube_version=f"v{KUBE_VERSION}.0")
    errors = [m["error"] for m in report["messages"] if m["severity"] == 3]
    assert any(message in e for e in errors), f"helm lint did not report {message!r}: {report}"


@pytest.mark.parametrize(("bad", "message"), TEMPLATE_BAD_VALUES)
def test_values_the_templates_refuse_fail_render(
    chart: helm.Chart, bad: dict[str, Any], message: str
) -> None:
    values = merged(MINIMAL, bad)
    helm.Chart.validate_schema(chart, values)  # the schema alone lets them through
    with pytest.raises(helm.HelmRenderError) as caught:
        render_text(chart, values)
    assert message in str(caught.value)


def test_existing_secret_needs_no_secret_values(chart: helm.Chart) -> None:
    values = merged(MINIMAL, {"secrets": {"existingSecret": "mine", "storeUrl": "", "secretKey": ""}})
    env = env_of(one(render(chart, values), "Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert env["SEEDBED_STORE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "store-url"}


# -- the Docker daemon's TLS material --------------------------------------------------------------


def test_docker_tls_script_makes_working_mutual_tls(chart: helm.Chart, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to run the worker pod's docker-tls.sh (apt-get install openssl)")
    config_map = one(render(chart, MINIMAL), "ConfigMap", "-docker-tls")
    script = tmp_path / "docker-tls.sh"
    script.write_text(config_map["data"]["docker-tls.sh"])
    certs = tmp_path / "certs"
    certs.mkdir()
    done = subprocess.run(["sh", str(script), str(certs)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert {p.relative_to(certs).as_posix() for p in certs.rglob("*") if p.is_file()} == {
        f"{part}/{name}" for part in ("server", "client") for name in ("ca.pem", "cert.pem", "key.pem")
    }, "the CA's key must be gone and nothing else left behind"
    assert (certs / "server" / "key.pem").stat().st_mode & 0o077 == 0

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs / "server" / "cert.pem", certs / "server" / "key.pem")
    server_ctx.load_verify_locations(certs / "server" / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # dockerd --tlsverify
    server_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    peers: list[str] = []

    def serve(times: int) -> None:
        for _ in range(times):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    peers.append(dict(x[0] for x in tls.getpeercert()["subject"])["commonName"])
                    tls.sendall(b"ok")
            except ssl.SSLError as exc:
                peers.append(f"refused: {exc.reason}")

    server = threading.Thread(target=serve, args=(2,), daemon=True)
    server.start()
    # The Docker client's side: verifies the daemon as 127.0.0.1 and presents the client certificate.
    client_ctx = ssl.create_default_context(cafile=str(certs / "client" / "ca.pem"))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    client_ctx.load_cert_chain(certs / "client" / "cert.pem", certs / "client" / "key.pem")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.recv(2) == b"ok"
    # Without the client certificate the daemon refuses.
    anonymous = ssl.create_default_context(cafile=str(certs / "client" / "ca.pem"))
    with (
        pytest.raises((ssl.SSLError, ConnectionError)),
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.recv(2)
    server.join(timeout=10)
    listener.close()
    assert peers[0] == "seedbed worker pod docker client"
    assert peers[1].startswith("refused")
