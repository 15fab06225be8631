"""Instructions per request, gateway and bare pass-through, under callgrind.

Run: ``python bench/instructions.py [--requests 1000] [--connections 10] [--stream]
[--cache-hit] [--only gateway|baseline] [--api chat|responses|responses-native|messages]
[--annotate]``.

``--api`` picks the gateway's endpoint: chat completions (the default), the
Responses API translated onto chat, the Responses API forwarded natively
(``OPEN_MODEL_RESPONSES=native``; the baseline then passes ``/v1/responses``
through too) or Anthropic's Messages API.

Wall-clock figures on a shared VM move by ±20 % from run to run; instruction
counts do not (``valgrind --tool=callgrind`` counts the instructions the
process executes, whatever else the machine does). Each proxy runs under
callgrind; the upstream (``bench/upstream_server.py``) and the load generator
run natively in their own processes. After a warm-up the counters are zeroed
(``callgrind_control -z``), ``--requests`` answers are driven over real HTTP,
then the counters are dumped (``callgrind_control -d``): everything the proxy
process did for those requests — server, event loop, HTTP client, the
gateway's own work — divided by the number of requests.

``--annotate`` prints the top C functions of each dump (``callgrind_annotate``);
for Python-level attribution use ``bench/run.py``'s py-spy profile.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from load import run_load  # noqa: E402
from procs import Child, free_port, start, wait_http, wait_port  # noqa: E402
from run import body, layout  # noqa: E402

_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.M)


def _callgrind(out: Path) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--dump-instr=no",
        "--combine-dumps=no",
    ]


def _control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True)


def _dumped_total(out_prefix: Path, before: set[Path]) -> tuple[int, Path]:
    """The instruction total of the newest dump file that was not there ``before``."""
    for _ in range(200):
        new = sorted(set(out_prefix.parent.glob(out_prefix.name + "*")) - before)
        for path in reversed(new):
            data = path.read_bytes()
            found = _TOTAL.search(data)
            if found:
                return int(found.group(1)), path
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump")


def measure(
    name: str,
    cmd: list[str],
    url: str,
    *,
    env: dict[str, str] | None,
    ready: str,
    payload: bytes,
    requests: int,
    connections: int,
    tmp: Path,
    stack: ExitStack,
    annotate: bool,
    path: str = "/v1/chat/completions",
) -> float:
    pins = layout()
    out = tmp / f"{name}.callgrind"
    child: Child = start(
        name,
        [*_callgrind(out), *cmd],
        cpus=pins.proxy,
        env=env,
        cwd=REPO,
        log_path=tmp / f"{name}.log",
    )
    stack.callback(child.stop)
    if ready == "port":
        wait_port(child, int(url.rsplit(":", 1)[1]), timeout_s=600)
    else:
        wait_http(child, url + ready, timeout_s=600)
    target = url + path
    warm = max(200, requests // 5)
    run_load(target, payload, connections=connections, duration_s=3600, stop_after=warm)
    _control("-z", child.pid)
    before = set(tmp.glob(out.name + "*"))
    result = run_load(
        target, payload, connections=connections, duration_s=3600, stop_after=requests
    )
    _control("-d", child.pid)
    total, path = _dumped_total(out, before)
    if result.errors:
        raise RuntimeError(f"{name}: {result.errors} errors")
    if annotate:
        text = subprocess.run(
            ["callgrind_annotate", "--threshold=95", str(path)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        print(f"--- {name}: top functions ---")
        print("\n".join(text.splitlines()[:60]))
    return total / result.requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument(
        "--cache-hit",
        action="store_true",
        help="repeat a temperature-0 request (served from the gateway's cache after the first)",
    )
    parser.add_argument("--only", choices=("gateway", "baseline"))
    parser.add_argument(
        "--baseline-client",
        choices=("aiohttp", "http1"),
        default="aiohttp",
        help="the pass-through's HTTP client: aiohttp (the named baseline) or the gateway's",
    )
    parser.add_argument(
        "--redis-url", help="the gateway's state in this Redis (default: in memory)"
    )
    parser.add_argument("--annotate", action="store_true")
    parser.add_argument(
        "--api", choices=("chat", "responses", "responses-native", "messages"), default="chat"
    )
    parser.add_argument(
        "--header", action="append", default=[], help="'name: value' sent with each request"
    )
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    payload = body(stream=args.stream, temperature=0 if args.cache_hit else None)
    gateway_path, gateway_payload, baseline_path = "/v1/chat/completions", payload, None
    if args.api != "chat":
        from dialects import messages_body, responses_body

        native = args.api == "responses-native"
        gateway_path = "/v1/messages" if args.api == "messages" else "/v1/responses"
        gateway_payload = (
            messages_body(args.stream) if args.api == "messages" else responses_body(args.stream)
        )
        baseline_path = "/v1/responses" if native else None
    python = sys.executable
    figures: dict[str, float] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-instr-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        upstream_child = start(
            "upstream",
            [python, str(BENCH / "upstream_server.py"), "--port", str(port)],
            cpus=layout().side,
        )
        stack.callback(upstream_child.stop)
        wait_port(upstream_child, port)
        upstream = f"http://127.0.0.1:{port}"
        proxies: list[tuple[str, list[str], int, dict[str, str] | None, str]] = []
        if args.only in (None, "baseline"):
            port = free_port()
            command = [python, str(BENCH / "baseline_proxy.py"), "--port", str(port)]
            command += ["--upstream", upstream, "--client", args.baseline_client]
            proxies.append(("baseline", command, port, None, "port"))
        if args.only in (None, "gateway"):
            port = free_port()
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("GATEWAY_", "OPENAI_", "ANTHROPIC_", "OPEN_MODEL_"))
            }
            env.update(
                GATEWAY_PORT=str(port),
                GATEWAY_HOST="127.0.0.1",
                GATEWAY_POLICIES=str(REPO / "policies"),
                GATEWAY_LOG_LEVEL="warning",
                OPEN_MODEL_BASE_URL=f"{upstream}/v1",
                LITELLM_LOCAL_MODEL_COST_MAP="True",
            )
            if args.redis_url:
                env["GATEWAY_REDIS_URL"] = args.redis_url
            if args.api == "responses-native":
                env["OPEN_MODEL_RESPONSES"] = "native"
            proxies.append(("gateway", [python, "-m", "gateway", "serve"], port, env, "/readyz"))
        for name, command, port, env, ready in proxies:
            figures[name] = measure(
                name,
                command,
                f"http://127.0.0.1:{port}",
                env=env,
                ready=ready,
                payload=gateway_payload if name == "gateway" or baseline_path else payload,
                requests=args.requests,
                connections=args.connections,
                tmp=tmp,
                stack=stack,
                annotate=args.annotate,
                path=gateway_path if name == "gateway" else baseline_path or "/v1/chat/completions",
            )
    mode = ("streaming" if args.stream else "non-streaming") + (
        ", cache hits" if args.cache_hit else ""
    )
    mode += f", {args.api}"
    print(f"{mode}, {args.connections} connections, {args.requests} requests measured")
    for name, value in figures.items():
        print(f"  {name:9s} {value / 1000:8.0f} k instructions per request")
    if len(figures) == 2:
        print(f"  baseline / gateway = {figures['baseline'] / figures['gateway']:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
