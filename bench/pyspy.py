"""Sample a running process with py-spy and summarise where its time goes.

:func:`record` runs ``py-spy record --format raw`` (collapsed stacks, one
``frame;frame;… count`` line per distinct stack, idle threads excluded) on a
pid for a number of seconds, non-blocking so that the sampled process is not
paused; :func:`summarise` turns the file into the top functions by own time
(the leaf frame) and by inclusive time (anywhere in the stack), with line
numbers folded so that a function counts once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: the checkout's root, wherever it is cloned: frames of its files are named relative to it
_ROOT = str(Path(__file__).resolve().parents[1]) + "/"

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy binary: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_record(
    pid: int, out: Path, seconds: float, *, cpus: set[int] | None
) -> subprocess.Popen[bytes]:
    binary = py_spy()
    if binary is None:
        raise FileNotFoundError("py-spy is not installed (pip install py-spy)")
    import os

    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )


def _name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    file = match["file"]
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    else:
        file = file.removeprefix(_ROOT)
    return f"{match['func']} ({file})"


_ENTRY = ("(gateway/cli.py)", "(gateway/server.py)", "(gateway/__main__.py)")


def _package(name: str) -> str:
    """``func (starlette/requests.py)`` -> ``starlette``; the stdlib is ``stdlib``."""
    file = name.rsplit(" (", 1)[-1].rstrip(")")
    head = file.split("/", 1)[0]
    if "/" not in file or head in {"asyncio", "logging", "json", "concurrent", "email", "http"}:
        return f"stdlib ({head})" if "/" in file else "stdlib"
    return head


def summarise(raw: Path, *, top: int = 10) -> dict[str, Any]:
    own: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        count = int(match["count"])
        # the first frames are the process and the thread
        frames = [
            f
            for f in match["stack"].split(";")
            if " (" in f and not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += count
        names = [_name(f) for f in frames]
        own[names[-1]] += count
        by_package[_package(names[-1])] += count
        for name in set(names):
            inclusive[name] += count
    if total == 0:
        return {"samples": 0, "top_own": [], "own_by_package": [], "gateway_inclusive": []}

    def pct(n: int) -> float:
        return 100 * n / total

    return {
        "samples": total,
        "top_own": [
            {"function": name, "own_pct": pct(n), "inclusive_pct": pct(inclusive[name])}
            for name, n in own.most_common(top)
        ],
        "own_by_package": [
            {"package": name, "own_pct": pct(n)} for name, n in by_package.most_common()
        ],
        # py-spy's coroutine stacks start at the task step, so the process's
        # entry frames (cli, server) only appear on some samples: left out
        "gateway_inclusive": [
            {"function": name, "inclusive_pct": pct(n)}
            for name, n in inclusive.most_common()
            if "(gateway/" in name and not name.endswith(_ENTRY)
        ][: top + 5],
    }
