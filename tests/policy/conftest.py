"""Fixtures for policy tests: small policy directories written to tmp paths."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.judging.prices import PriceBook
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.loader import load_policy
from gateway.policy.problems import PolicyError, Problem

SHIPPED = Path(__file__).resolve().parents[2] / "policies"

#: a minimal valid policy other tests extend
BASE = """
targets:
  open-a:
    kind: open
    base_url: http://127.0.0.1:9/v1
    model: llama
  prop-a:
    kind: proprietary
    base_url: http://127.0.0.1:9/v1
    model: gpt-4o
    api_key: sk-test
    price: {input_per_mtok: 2.5, output_per_mtok: 10}
rules:
  - name: everything
    route: {targets: [prop-a, open-a]}
"""

WriteDir = Callable[..., Path]


@pytest.fixture
def write_policy(tmp_path: Path) -> WriteDir:
    """``write_policy(**{"a.yaml": text})`` writes the files (dedented) and returns the dir."""

    def write(**files: str) -> Path:
        for name, text in files.items():
            path = tmp_path / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return tmp_path

    return write


def load(path: Path, environ: dict[str, str] | None = None) -> CompiledPolicy:
    return load_policy(path, environ or {}, prices=PriceBook({}))


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(PolicyError) as info:
        load(path, environ)
    return info.value.errors
