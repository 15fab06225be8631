"""deploy/docker-compose.yml: valid Compose, the promised services and profiles."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.deploy.conftest import DATA, DEPLOY, REPO, load_json, load_yaml

COMPOSE_FILE = DEPLOY / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft201909Validator:
    return jsonschema.Draft201909Validator(load_json(DATA / "compose-spec.json"))


def test_validates_against_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.Draft201909Validator
) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert errors == []


def test_schema_rejects_a_misspelt_key(
    compose: dict[str, Any], validator: jsonschema.Draft201909Validator
) -> None:
    broken = {
        **compose,
        "services": {
            **compose["services"],
            "redis": {**compose["services"]["redis"], "helthcheck": {}},
        },
    }
    assert not validator.is_valid(broken)


def test_services_and_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {
        "gateway",
        "gateway-demo",
        "redis",
        "prometheus",
        "grafana",
        "vllm",
        "ollama",
    }
    for always in ("redis", "prometheus", "grafana"):
        assert "profiles" not in services[always], always
    assert services["gateway-demo"]["profiles"] == ["demo"]
    assert "--demo" in services["gateway-demo"]["command"]
    assert "--demo" not in services["gateway"]["command"]
    assert {"vllm", "ollama"} <= set(services["gateway"]["profiles"])
    assert services["vllm"]["profiles"] == ["vllm"]
    assert services["ollama"]["profiles"] == ["ollama"]
    assert services["vllm"]["image"].startswith("vllm/vllm-openai:")
    assert services["ollama"]["image"].startswith("ollama/ollama:")


def test_gateways_are_built_from_the_repository_dockerfile(compose: dict[str, Any]) -> None:
    for name in ("gateway", "gateway-demo"):
        build = compose["services"][name]["build"]
        assert (COMPOSE_FILE.parent / build["context"]).resolve() == REPO
        assert (REPO / build["dockerfile"]).is_file()


def test_demo_gateway_answers_to_the_scraped_name(compose: dict[str, Any]) -> None:
    # prometheus.yml scrapes gateway:8080 whichever gateway profile runs.
    assert "gateway" in compose["services"]["gateway-demo"]["networks"]["default"]["aliases"]


def test_secrets_come_from_an_uncommitted_env_file(compose: dict[str, Any]) -> None:
    assert compose["services"]["gateway"]["env_file"] == ".env"
    assert "env_file" not in compose["services"]["gateway-demo"], "the demo must run without .env"
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for var in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "OPEN_MODEL_BASE_URL",
        "OPEN_MODEL_NAME",
        "GATEWAY_ADMIN_KEY",
    ):
        assert f"{var}=" in example, var
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored
    assert not (DEPLOY / ".env").exists() or ".env" in ignored


def test_vllm_reserves_a_gpu(compose: dict[str, Any]) -> None:
    (device,) = compose["services"]["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert device["driver"] == "nvidia"


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_gateway_waits_for_healthy_redis_and_uses_it(compose: dict[str, Any]) -> None:
    for name in ("gateway", "gateway-demo"):
        service = compose["services"][name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["GATEWAY_REDIS_URL"] == "redis://redis:6379/0"


def test_gateway_container_is_locked_down(compose: dict[str, Any]) -> None:
    service = compose["services"]["gateway"]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "/tmp" in service["tmpfs"]
    # Longer than the drain timeout, so SIGKILL never cuts a draining stream.
    assert int(service["stop_grace_period"].removesuffix("s")) > int(
        service["environment"]["GATEWAY_DRAIN_TIMEOUT_S"]
    )


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: {source}"
