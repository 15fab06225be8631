"""The decision log on disk: JSON lines in a hash chain, rotated by size and time.

Every line is one record (:mod:`gateway.policy.decision_log` says what a
decision record holds) plus its place in the chain:

* ``seq``: 1, 2, 3, ... across every file of the log, never reset;
* ``prev``: the ``hash`` of the record before it (64 zeros for the first);
* ``hash``: ``sha256(bytes.fromhex(prev) + canonical)``, where ``canonical`` is
  the record without ``hash`` and ``hmac``, as JSON with sorted keys
  (:func:`canonical`);
* ``hmac``: when ``GATEWAY_AUDIT_HMAC_KEY`` is set, HMAC-SHA256 of the hash
  under that key: without the key nobody can write a chain that verifies.

A file begins with an ``open`` record (chained to the last record of the
file before it, which it names) and ends with a ``close`` record, written when
it is rotated or the gateway shuts down. The file being written is always
``path``; a closed one is renamed ``<stem>-<UTC time>-<last seq><suffix>``
beside it. A gateway that starts and finds ``path`` closes the chain over it:
the old file is renamed and the new one's ``open`` record says where the
chain picked up (and whether the old file had been closed or the process
had died). :mod:`gateway.observability.audit_verify` checks all of this.

One writer per file: replicas each write their own log. Writes are
serialised by a lock and flushed per record (a crash loses at most the line
being written).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.policy.decision_log import Outcome, record
from gateway.policy.model import Decision, Facts

GENESIS = "0" * 64
#: bytes read from the end of an existing file to find its last record
_TAIL_BYTES = 1 << 16


def canonical(rec: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: itself without ``hash`` and ``hmac``."""
    body = {k: v for k, v in rec.items() if k not in ("hash", "hmac")}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev: str, canonical_bytes: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + canonical_bytes).hexdigest()


def chain_hmac(key: bytes, digest: str) -> str:
    return hmac.new(key, bytes.fromhex(digest), hashlib.sha256).hexdigest()


def rotated_name(path: Path, closed_at: float, last_seq: int) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(closed_at))
    return path.with_name(f"{path.stem}-{stamp}-{last_seq}{path.suffix}")


def last_record(path: Path) -> dict[str, Any] | None:
    """The last whole chained record of a file (None: none can be read)."""
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - _TAIL_BYTES))
        tail = file.read()
    for line in reversed(tail.split(b"\n")):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("seq"), int) and "hash" in rec:
            return rec
    return None


class AuditLog:
    """Appends chained records to ``path``; safe to share between threads."""

    def __init__(
        self,
        path: Path,
        *,
        hmac_key: bytes | None = None,
        max_bytes: int = 64 * 1024 * 1024,
        rotate_s: float = 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._key = hmac_key or None
        self._max_bytes = max_bytes
        self._rotate_s = rotate_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        self._prev = GENESIS
        self._file: IO[bytes] | None = None
        self._size = 0
        self._opened_at = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)
        previous: dict[str, Any] = {"file": None}
        if path.exists() and path.stat().st_size > 0:
            previous = self._take_over()
        self._open(previous)

    # -- writing ----------------------------------------------------------------

    def write(
        self,
        facts: Facts,
        decision: Decision,
        *,
        request_id: str,
        ts: float,
        rule_set: str = "default",
        outcome: Outcome | None = None,
    ) -> None:
        """Append the record of one request (see :func:`gateway.policy.decision_log.record`)."""
        rec = record(
            facts, decision, request_id=request_id, ts=ts, rule_set=rule_set, outcome=outcome
        )
        with self._lock:
            if self._file is None:
                return  # closed: the gateway is shutting down
            if self._size >= self._max_bytes or (
                self._rotate_s > 0 and self._clock() - self._opened_at >= self._rotate_s
            ):
                self._rotate()
            self._append(rec)

    def writer(
        self, facts: Facts, decision: Decision, *, request_id: str, ts: float, rule_set: str
    ) -> Callable[[Outcome], None]:
        """What writes this request's record once its outcome is known (the
        request record calls it when the request finishes, however it ends)."""

        def write(outcome: Outcome) -> None:
            self.write(
                facts, decision, request_id=request_id, ts=ts, rule_set=rule_set, outcome=outcome
            )

        return write

    def close(self) -> None:
        """Write the closing record and close the file (later writes are dropped)."""
        with self._lock:
            if self._file is None:
                return
            self._append({"event": "close", "ts": self._clock(), "reason": "shutdown"})
            self._file.close()
            self._file = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the chain ------------------------------------------------------------------

    def _append(self, rec: dict[str, Any]) -> None:
        assert self._file is not None
        self._seq += 1
        rec["seq"] = self._seq
        rec["prev"] = self._prev
        digest = chain_hash(self._prev, canonical(rec))
        rec["hash"] = digest
        if self._key is not None:
            rec["hmac"] = chain_hmac(self._key, digest)
        line = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS) + b"\n"
        self._file.write(line)
        self._file.flush()
        self._size += len(line)
        self._prev = digest

    def _open(self, previous: dict[str, Any]) -> None:
        self._file = self.path.open("ab")
        self._size = 0
        self._opened_at = self._clock()
        self._append({"event": "open", "ts": self._opened_at, "previous": previous})

    def _rotate(self) -> None:
        assert self._file is not None
        now = self._clock()
        self._append({"event": "close", "ts": now, "reason": "rotate"})
        self._file.close()
        closed = rotated_name(self.path, now, self._seq)
        self.path.rename(closed)
        self._open({"file": closed.name, "seq": self._seq, "closed": True})

    def _take_over(self) -> dict[str, Any]:
        """Continue the chain of a file left at ``path`` (an earlier process's)."""
        last = last_record(self.path)
        now = self._clock()
        if last is None:
            # not a chained log (or nothing whole in it): a new chain starts
            closed = rotated_name(self.path, now, 0)
            self.path.rename(closed)
            return {"file": closed.name, "seq": None, "closed": False}
        self._seq, self._prev = int(last["seq"]), str(last["hash"])
        closed = rotated_name(self.path, now, self._seq)
        self.path.rename(closed)
        return {"file": closed.name, "seq": self._seq, "closed": last.get("event") == "close"}
