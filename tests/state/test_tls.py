"""``rediss://`` URLs: the state backend talks TLS to a real TLS-only redis-server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.state.base import CachedResponse, StateUnavailable
from gateway.state.factory import build_state
from tests.servers import RedisServer, free_port


def _certificates(directory: Path) -> dict[str, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make test certificates (Debian: apt-get install openssl)")
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        str(cert),
        "-extfile",
        str(extensions),
    )
    return {"ca": ca, "cert": cert, "key": key}


@pytest.fixture(scope="module")
def tls_redis(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RedisServer, dict[str, Path]]]:
    directory = tmp_path_factory.mktemp("tls")
    certs = _certificates(directory)
    tls_port = free_port()
    server = RedisServer(
        directory=directory,
        extra_args=(
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certs["cert"]),
            "--tls-key-file", str(certs["key"]),
            "--tls-ca-cert-file", str(certs["ca"]),
            "--tls-auth-clients", "no",
        ),
    )  # fmt: skip
    server.start()
    server.tls_port = tls_port  # type: ignore[attr-defined]
    yield server, certs
    server.close()


async def test_rediss_url_round_trip(tls_redis: tuple[RedisServer, dict[str, Path]]) -> None:
    server, certs = tls_redis
    url = f"rediss://127.0.0.1:{server.tls_port}/0?ssl_ca_certs={certs['ca']}"  # type: ignore[attr-defined]
    state = await build_state(url, timeout_s=1.0)
    try:
        assert await state.ping()
        entry = CachedResponse(target="t", level=0, body=b'{"ok": true}')
        await state.cache.set("tls-key", entry, 60)
        assert await state.cache.get("tls-key") == entry
    finally:
        await state.aclose()


async def test_rediss_refuses_an_untrusted_server(
    tls_redis: tuple[RedisServer, dict[str, Path]],
) -> None:
    server, _ = tls_redis
    # no CA given: the test CA is not trusted by the system store
    state = await build_state(f"rediss://127.0.0.1:{server.tls_port}/0", timeout_s=1.0)  # type: ignore[attr-defined]
    try:
        assert not await state.ping()
        with pytest.raises(StateUnavailable):
            await state.cache.get("anything")
    finally:
        await state.aclose()
