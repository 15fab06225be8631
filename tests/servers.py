"""Real Redis servers for tests, on free loopback ports, in temporary dirs.

Independent of pytest: :class:`RedisServer` and :class:`RedisCluster` can be
used from any script (the benchmark uses them too). The pytest fixtures that
wrap them live in ``tests/conftest.py``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: the cluster bus listens on the client port + 10000
CLUSTER_BUS_OFFSET = 10000


class RedisUnavailable(RuntimeError):
    """``redis-server`` / ``redis-cli`` are not installed or did not start."""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RedisUnavailable(
            f"{name} is not installed; the state tests need a real Redis "
            "(Debian/Ubuntu: apt-get install redis-server)"
        )
    return path


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, with_cluster_bus: bool = False) -> int:
    """A loopback port nobody listens on (and its cluster bus port too)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not with_cluster_bus:
            return port
        if port + CLUSTER_BUS_OFFSET < 65536 and _port_free(port + CLUSTER_BUS_OFFSET):
            return port
    raise RedisUnavailable("no free port pair found for a cluster node")


def command(port: int, *args: str, timeout_s: float = 1.0) -> str:
    """Send one command over a raw socket; the raw RESP reply as text."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(payload.encode())
        reply = b""
        deadline = time.monotonic() + timeout_s
        while not reply.endswith(b"\r\n") or (reply.startswith(b"$") and reply.count(b"\r\n") < 2):
            if time.monotonic() > deadline:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply.decode("utf-8", "replace")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server process, killing it if it does not exit in 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class RedisServer:
    """One ``redis-server`` process without persistence, on a fixed free port.

    ``stop()`` then ``start()`` brings it back on the same port (with no
    data), which is how tests show that clients reconnect by themselves.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        directory: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self._binary = _binary("redis-server")
        self.port = port if port is not None else free_port()
        self._own_dir = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="gw-redis-"))
        self._extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        if self.running:
            return
        log = (self.directory / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self._extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_for_ping(timeout_s)

    def _wait_for_ping(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            try:
                if command(self.port, "PING").startswith("+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RedisUnavailable(f"redis-server on port {self.port} did not answer PING:\n{log}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisCluster:
    """Three cluster-enabled masters without replicas, slots spread across them."""

    def __init__(self, size: int = 3) -> None:
        self._cli = _binary("redis-cli")
        self.directory = Path(tempfile.mkdtemp(prefix="gw-redis-cluster-"))
        self.nodes: list[RedisServer] = []
        for i in range(size):
            node_dir = self.directory / f"node{i}"
            node_dir.mkdir()
            self.nodes.append(
                RedisServer(
                    free_port(with_cluster_bus=True),
                    directory=node_dir,
                    extra_args=(
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ),
                )
            )

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout_s: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        if not self._cluster_ok(self.nodes[0]):
            result = subprocess.run(
                [
                    self._cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{node.port}" for node in self.nodes),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            if result.returncode != 0:
                self.close()
                raise RedisUnavailable(
                    f"redis-cli --cluster create failed:\n{result.stdout}{result.stderr}"
                )
        self.wait_ok(timeout_s)

    def _cluster_ok(self, node: RedisServer) -> bool:
        """Cluster state ok, and this node sees every node connected at its address."""
        try:
            if "cluster_state:ok" not in command(node.port, "CLUSTER", "INFO"):
                return False
            lines = [
                line for line in command(node.port, "CLUSTER", "NODES").splitlines() if "@" in line
            ]
        except OSError:
            return False
        addresses = {f"127.0.0.1:{n.port}@" for n in self.nodes}
        return len(lines) == len(self.nodes) and all(
            " connected" in line
            and "fail" not in line
            and "handshake" not in line
            and any(address in line for address in addresses)
            for line in lines
        )

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Wait until every node says ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self._cluster_ok(node) for node in self.nodes):
                return
            time.sleep(0.05)
        raise RedisUnavailable("redis cluster did not reach cluster_state:ok")

    def flushall(self) -> None:
        for node in self.nodes:
            command(node.port, "FLUSHALL")

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
