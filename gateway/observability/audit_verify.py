"""Check a decision log's chain: every edited, deleted, reordered or truncated
record is found and named by file and line.

The files given are put in chain order by the ``seq`` of their first record
(any order, any names, on the command line). Then each line must be a JSON
record whose ``hash`` is the hash of its ``prev`` and canonical bytes (else it
was **edited**), whose ``seq`` follows the one before it (a gap: records
**deleted**; a step back: records **reordered**), whose ``prev`` is the
``hash`` of the record before it, and, when a key is given, whose ``hmac``
verifies. A file must end with its ``close`` record: one that does not was
**truncated** — unless the next file's ``open`` record says the chain picked up
at exactly this file's last record after an unclean stop (reported as a note),
or it is the last file and ``live`` is set (the gateway is still writing it;
its tail cannot be checked until it is closed).

The earliest file given may start mid-chain (older files archived away): that
is a note, not a problem.

What a chain cannot show without a key: someone who rewrites a file and
recomputes every hash after the change. With ``GATEWAY_AUDIT_HMAC_KEY`` set
when the log is written and verified, they would need the key too.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.observability.audit_log import GENESIS, canonical, chain_hash, chain_hmac


@dataclass
class Verification:
    files: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"{p}" for p in self.problems]
        lines.extend(f"note: {n}" for n in self.notes)
        verdict = (
            "ok: the chain holds"
            if self.ok
            else f"FAILED: {len(self.problems)} problem(s); the log was altered"
        )
        lines.append(f"{verdict} ({self.files} files, {self.records} records)")
        return "\n".join(lines)


@dataclass
class _File:
    path: Path
    lines: list[bytes]
    first_seq: int | None


def _first_seq(lines: list[bytes]) -> int | None:
    for line in lines:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if isinstance(rec, dict) and isinstance(rec.get("seq"), int):
            return int(rec["seq"])
        return None
    return None


def _read(path: Path) -> _File:
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return _File(path, lines, _first_seq(lines))


class _Walker:
    def __init__(self, key: bytes | None, report: Verification) -> None:
        self.key = key
        self.report = report
        self.seq: int | None = None
        self.prev: str | None = None

    def problem(self, where: str, what: str) -> None:
        self.report.problems.append(f"{where}: {what}")

    def walk(self, file: _File) -> dict[str, Any] | None:
        """Check one file; return its last readable record."""
        last: dict[str, Any] | None = None
        for number, line in enumerate(file.lines, 1):
            where = f"{file.path}:{number}"
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.problem(where, "not a whole JSON record (truncated or edited)")
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int):
                self.problem(where, "not a chained record (no seq): edited or inserted")
                continue
            if last is not None and last.get("event") == "close":
                self.problem(where, "a record after the file's closing record: inserted")
            self.record(where, rec, number == 1)
            last = rec
        return last

    def record(self, where: str, rec: dict[str, Any], first_in_file: bool) -> None:
        self.report.records += 1
        seq, prev, digest = rec["seq"], rec.get("prev"), rec.get("hash")
        if not isinstance(prev, str) or not isinstance(digest, str):
            self.problem(where, "no prev or hash: edited")
        else:
            try:
                expected = chain_hash(prev, canonical(rec))
            except ValueError:
                expected = ""
            if expected != digest:
                self.problem(where, f"record {seq} was edited (its hash does not match)")
            elif self.key is not None:
                mac = rec.get("hmac")
                if not isinstance(mac, str):
                    self.problem(where, f"record {seq} has no hmac (a key is set): forged")
                elif not hmac.compare_digest(mac, chain_hmac(self.key, digest)):
                    self.problem(where, f"record {seq}: its hmac does not verify: forged")
        if first_in_file and rec.get("event") != "open":
            self.problem(where, "the file does not begin with its opening record: truncated")
        if self.seq is None:
            if seq != 1 and prev != GENESIS:
                self.report.notes.append(
                    f"{where}: the chain starts at record {seq} (earlier files not given)"
                )
        elif seq > self.seq + 1:
            missing = seq - self.seq - 1
            self.problem(
                where, f"{missing} record(s) missing before this one ({self.seq + 1}..{seq - 1})"
            )
        elif seq <= self.seq:
            self.problem(where, f"record {seq} is out of order (after record {self.seq})")
        elif prev != self.prev:
            self.problem(where, f"record {seq} does not follow record {self.seq}: replaced")
        self.seq, self.prev = seq, digest if isinstance(digest, str) else None


def verify(paths: Sequence[Path], *, key: bytes | None = None, live: bool = False) -> Verification:
    """Check the chain over ``paths`` (a log's files, in any order)."""
    report = Verification()
    files = []
    for path in paths:
        try:
            files.append(_read(path))
        except OSError as exc:
            report.problems.append(f"{path}: cannot read: {exc}")
    unordered = [f for f in files if f.first_seq is None]
    for file in unordered:
        if not file.lines:
            report.problems.append(f"{file.path}: empty: truncated")
        else:
            report.problems.append(f"{file.path}:1: not a chained record: edited or truncated")
    files = sorted((f for f in files if f.first_seq is not None), key=lambda f: f.first_seq or 0)
    report.files = len(files)
    walker = _Walker(key, report)
    for index, file in enumerate(files):
        last = walker.walk(file)
        if last is None or last.get("event") == "close":
            continue
        where = f"{file.path}:{len(file.lines)}"
        following = files[index + 1] if index + 1 < len(files) else None
        if following is None:
            if not live:
                report.problems.append(
                    f"{where}: the file ends without its closing record: truncated, or the "
                    "gateway is still writing it (then pass --live)"
                )
            continue
        opening = _opening(following)
        previous = opening.get("previous") if opening is not None else None
        if (
            isinstance(previous, dict)
            and previous.get("closed") is False
            and previous.get("seq") == last.get("seq")
        ):
            report.notes.append(
                f"{where}: not closed (the gateway stopped uncleanly); the next file picked "
                f"up the chain at record {last.get('seq')}"
            )
        else:
            report.problems.append(f"{where}: the file ends without its closing record: truncated")
    return report


def _opening(file: _File) -> dict[str, Any] | None:
    if not file.lines:
        return None
    try:
        rec = orjson.loads(file.lines[0])
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) and rec.get("event") == "open" else None
