"""deploy/k8s: schema-valid manifests, complete kustomizations, a safe Deployment."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DATA, K8S, REPO, load_json, load_yaml, load_yaml_all, require_tool

KUBERNETES_VERSION = "1.30"
#: Custom resources: kubernetes-validate ships no schema for them; they are
#: validated against the structural schema in tests/deploy/data instead.
CRD_KINDS = frozenset(
    {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
)
CRD_SCHEMA = load_json(DATA / "monitoring-coreos-v1.schema.json")
KUSTOMIZE_KINDS = frozenset({"Kustomization", "Component"})

MANIFEST_FILES = sorted(
    p for p in K8S.rglob("*.yaml") if load_yaml_all(p)[0].get("kind") not in KUSTOMIZE_KINDS
)
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))
DOCS = [(path, doc) for path in MANIFEST_FILES for doc in load_yaml_all(path)]


def _id(item: tuple[Path, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.relative_to(K8S)}:{doc['kind']}/{doc['metadata']['name']}"


def _by_kind(kind: str, name: str) -> dict[str, Any]:
    return next(doc for _, doc in DOCS if doc["kind"] == kind and doc["metadata"]["name"] == name)


def validate(doc: dict[str, Any]) -> None:
    """Kubernetes' own schema for a built-in kind, ours for a custom resource."""
    if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
        crd_validator(doc["kind"]).validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = {**CRD_SCHEMA, "$ref": f"#/$defs/{kind}"}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("item", DOCS, ids=[_id(d) for d in DOCS])
def test_manifest_validates_against_its_schema(item: tuple[Path, dict[str, Any]]) -> None:
    _, doc = item
    validate(doc)


def test_every_custom_resource_has_a_schema() -> None:
    custom = {(d["apiVersion"], d["kind"]) for _, d in DOCS if "coreos.com" in d["apiVersion"]}
    assert custom == CRD_KINDS
    assert set(CRD_SCHEMA["$defs"]) == {kind for _, kind in CRD_KINDS}


def test_schema_validation_rejects_a_misspelt_field() -> None:
    deployment = yaml.safe_load(yaml.safe_dump(_by_kind("Deployment", "llm-gateway")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {
        "httpGet": {"path": "/readyz", "port": "http"}
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _broken(kind: str, name: str, path: tuple[str | int, ...], key: str, value: Any) -> Any:
    doc = yaml.safe_load(yaml.safe_dump(_by_kind(kind, name)))
    node = doc
    for step in path:
        node = node[step]
    node[key] = value
    return doc


@pytest.mark.parametrize(
    ("kind", "path", "key", "value"),
    [
        # misspelt fields, where they would be silently ignored by the operator
        ("ServiceMonitor", ("spec",), "endpoint", [{"port": "http"}]),
        ("ServiceMonitor", ("spec", "endpoints", 0), "intervall", "15s"),
        ("ServiceMonitor", ("spec", "selector"), "matchLabel", {"app": "x"}),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0), "annotation", {"a": "b"}),
        # wrong types and values
        ("ServiceMonitor", ("spec", "endpoints", 0), "interval", "15 seconds"),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0), "for", 10),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0), "labels", {"severity": 1}),
        # a rule that is both an alert and a recording rule
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0), "record", "job:x:rate5m"),
    ],
)
def test_custom_resource_schema_rejects_mistakes(
    kind: str, path: tuple[str | int, ...], key: str, value: Any
) -> None:
    validate(_by_kind(kind, "llm-gateway"))
    with pytest.raises(jsonschema.ValidationError):
        validate(_broken(kind, "llm-gateway", path, key, value))


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_references_exist(path: Path) -> None:
    kustomization = load_yaml(path)
    referenced = [*kustomization.get("resources", []), *kustomization.get("components", [])]
    for generator in kustomization.get("configMapGenerator", []) + kustomization.get(
        "secretGenerator", []
    ):
        referenced += [f.split("=", 1)[-1] for f in generator.get("files", [])]
        referenced += generator.get("envs", [])
    for ref in referenced:
        assert (path.parent / ref).exists(), f"{path.relative_to(K8S)} refers to missing {ref}"


def test_every_manifest_is_in_a_kustomization_except_the_secret_example() -> None:
    listed = {
        (k.parent / r).resolve() for k in KUSTOMIZATIONS for r in load_yaml(k).get("resources", [])
    }
    unlisted = {p.resolve() for p in MANIFEST_FILES} - listed
    assert unlisted == {(K8S / "secret.example.yaml").resolve()}


def test_policies_configmap_carries_every_policy_file() -> None:
    generator = next(
        g
        for g in load_yaml(K8S / "kustomization.yaml")["configMapGenerator"]
        if g["name"] == "llm-gateway-policies"
    )
    listed = {(K8S / f).resolve() for f in generator["files"]}
    # The gateway loads every *.yaml/*.yml at the top of the policy directory.
    shipped = {p.resolve() for p in (REPO / "policies").iterdir() if p.suffix in {".yaml", ".yml"}}
    assert listed == shipped
    # In place updates (no hash) are what lets the mounted files change under a running pod.
    assert generator["options"]["disableNameSuffixHash"] is True


def test_dashboard_configmaps_carry_every_dashboard() -> None:
    monitoring = load_yaml(K8S / "monitoring" / "kustomization.yaml")
    listed = {
        (K8S / "monitoring" / f).resolve()
        for g in monitoring["configMapGenerator"]
        for f in g["files"]
    }
    shipped = {p.resolve() for p in (REPO / "deploy" / "grafana" / "dashboards").glob("*.json")}
    assert listed == shipped
    assert monitoring["generatorOptions"]["labels"] == {"grafana_dashboard": "1"}


def test_kustomize_builds() -> None:
    kubectl = require_tool(
        "kubectl",
        "kubectl (with its built-in kustomize) is not installed; the manifests are still schema-checked above",
    )
    for root in (K8S, K8S / "monitoring"):
        done = subprocess.run(
            [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(root)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        built = [d for d in yaml.safe_load_all(done.stdout) if d]
        assert all(
            d["metadata"].get("namespace") == "llm-gateway"
            for d in built
            if d["kind"] != "Namespace"
        )
        for doc in built:
            validate(doc)


# -- the gateway Deployment ---------------------------------------------------


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    spec: dict[str, Any] = _by_kind("Deployment", "llm-gateway")["spec"]["template"]["spec"]
    return spec


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any]
    (container,) = pod["containers"]
    return container


def test_pod_security(pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    context = _container(pod)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


def test_grace_period_outlasts_pre_stop_and_drain(pod: dict[str, Any]) -> None:
    container = _container(pod)
    env = load_yaml(K8S / "kustomization.yaml")["configMapGenerator"]
    literals = dict(
        lit.split("=", 1) for g in env if g["name"] == "llm-gateway-env" for lit in g["literals"]
    )
    drain = float(literals["GATEWAY_DRAIN_TIMEOUT_S"])
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > drain + float(command[1])


def test_policies_mounted_from_the_configmap_and_tmp_writable(pod: dict[str, Any]) -> None:
    mounts = {m["name"]: m for m in _container(pod)["volumeMounts"]}
    assert mounts["policies"]["mountPath"] == "/app/policies"
    assert "subPath" not in mounts["policies"], "subPath mounts never see ConfigMap updates"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["policies"]["configMap"]["name"] == "llm-gateway-policies"
    assert "emptyDir" in volumes["tmp"]


def test_secrets_come_from_secret_refs(pod: dict[str, Any]) -> None:
    env = {e["name"]: e for e in _container(pod)["env"]}
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GATEWAY_REDIS_URL", "GATEWAY_ADMIN_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "llm-gateway-secrets", name
    example = load_yaml(K8S / "secret.example.yaml")
    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GATEWAY_REDIS_URL",
        "GATEWAY_ADMIN_KEY",
        "OPEN_MODEL_API_KEY",
    ):
        assert env[name]["valueFrom"]["secretKeyRef"]["key"] in example["stringData"], name
    assert not any(v.startswith("sk-") and len(v) > 12 for v in example["stringData"].values())


def test_resources_set(pod: dict[str, Any]) -> None:
    resources = _container(pod)["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


def test_service_monitor_scrapes_the_gateway_service() -> None:
    monitor = _by_kind("ServiceMonitor", "llm-gateway")
    service = _by_kind("Service", "llm-gateway")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_selectors_match_their_pods() -> None:
    deployment = _by_kind("Deployment", "llm-gateway")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        doc = _by_kind(kind, "llm-gateway")
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= pod_labels.items(), kind
    assert (
        _by_kind("HorizontalPodAutoscaler", "llm-gateway")["spec"]["scaleTargetRef"]["name"]
        == "llm-gateway"
    )
    redis = _by_kind("StatefulSet", "llm-gateway-redis")
    redis_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert (
        _by_kind("Service", "llm-gateway-redis")["spec"]["selector"].items() <= redis_labels.items()
    )
    policy = _by_kind("NetworkPolicy", "llm-gateway-redis")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= redis_labels.items()
    assert (
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"].items()
        <= pod_labels.items()
    )


def test_streams_autoscaling_component_targets_the_hpa() -> None:
    component = load_yaml(K8S / "components" / "streams-autoscaling" / "kustomization.yaml")
    assert component["kind"] == "Component"
    (patch,) = component["patches"]
    assert patch["target"]["name"] == "llm-gateway"
    (op,) = yaml.safe_load(patch["patch"])
    assert op["value"]["pods"]["metric"]["name"] == "gateway_active_streams"
