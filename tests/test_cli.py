"""The ``gateway`` command itself: what a user types first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import gateway
from gateway.cli import main

GATEWAY = Path(sys.executable).parent / "gateway"


def test_version_flag_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gateway {gateway.__version__}"


def test_the_installed_command_answers_version() -> None:
    done = subprocess.run(
        [str(GATEWAY), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == f"gateway {gateway.__version__}"
