"""Fixtures for provider tests: targets, recorded-style wire data, respx."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.levels import Level
from gateway.targets import Kind, ProviderType, Target, Timeouts

# litellm must not fetch its cost map from the network when a test imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

DATA = Path(__file__).resolve().parent.parent / "data"

ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
GEMINI_KEY = "AIzaSyTest0123456789abcdef"


def read_data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def anthropic_target(**changes: Any) -> Target:
    values: dict[str, Any] = {
        "name": "claude",
        "kind": Kind.PROPRIETARY,
        "provider": ProviderType.LITELLM,
        "litellm_provider": "anthropic",
        "model": "claude-3-5-sonnet-20240620",
        "api_key": ANTHROPIC_KEY,
        "max_sensitivity": Level.INTERNAL,
        "timeouts": Timeouts(connect=2.0, first_byte=10.0, total=20.0),
    }
    values.update(changes)
    return Target(**values)


def gemini_target(**changes: Any) -> Target:
    values: dict[str, Any] = {
        "name": "gemini",
        "kind": Kind.PROPRIETARY,
        "provider": ProviderType.LITELLM,
        "litellm_provider": "gemini",
        "model": "gemini-1.5-flash",
        "api_key": GEMINI_KEY,
        "max_sensitivity": Level.INTERNAL,
        "timeouts": Timeouts(connect=2.0, first_byte=10.0, total=20.0),
    }
    values.update(changes)
    return Target(**values)


@pytest.fixture
def data() -> Callable[[str], bytes]:
    return read_data
