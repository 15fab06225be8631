"""The decision log's chain: every edit, deletion, reordering and cut is found,
and named by file and line; records hold names, never values, and stay small."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.judging.build import FactsBuilder
from gateway.observability.audit_log import AuditLog, canonical, chain_hash
from gateway.observability.audit_verify import verify
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.decision_log import MAX_NAMES, Outcome, read_log
from tests.policy.conftest import SHIPPED, load

KEY = b"audit-key-for-tests"
PLANTED = "4111 1111 1111 1111 planted-value-AKIAZ7QX3MPLW9RT2KVB"


@pytest.fixture(scope="module")
def builder() -> FactsBuilder[CompiledPolicy]:
    return FactsBuilder(load(SHIPPED))


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def write(log: AuditLog, builder: FactsBuilder[CompiledPolicy], n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        body = {"model": "auto", "messages": [{"role": "user", "content": f"hello {i}"}]}
        facts = builder.build(endpoint="chat", body=body, headers={}, team="growth")
        outcome = Outcome("success", 200, target="local", kind="open", cost_usd=0.0)
        log.write(
            facts, builder.policy.decide(facts), request_id=f"r{i}", ts=1000.0 + i, outcome=outcome
        )


def a_log(tmp_path: Path, builder: FactsBuilder[CompiledPolicy], n: int = 5) -> Path:
    path = tmp_path / "decisions.jsonl"
    with AuditLog(path, hmac_key=KEY) as log:
        write(log, builder, n)
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_an_untouched_log_verifies(tmp_path: Path, builder: FactsBuilder[CompiledPolicy]) -> None:
    path = a_log(tmp_path, builder)
    records = [orjson.loads(line) for line in lines_of(path)]
    assert [r["event"] for r in records] == ["open"] + ["decision"] * 5 + ["close"]
    assert [r["seq"] for r in records] == list(range(1, 8))
    for before, after in itertools.pairwise(records):
        assert after["prev"] == before["hash"]
        assert after["hash"] == chain_hash(after["prev"], canonical(after))
    result = verify([path], key=KEY)
    assert result.ok, result.render()
    assert result.records == 7
    # simulate still reads it: decisions only
    assert len(list(read_log(path))) == 5


def test_an_edited_record_is_named(tmp_path: Path, builder: FactsBuilder[CompiledPolicy]) -> None:
    path = a_log(tmp_path, builder)
    lines = lines_of(path)
    lines[3] = lines[3].replace(b'"level":"public"', b'"level":"restricted"')
    path.write_bytes(b"".join(lines))
    result = verify([path], key=KEY)
    assert not result.ok
    assert any(p.startswith(f"{path}:4: record 4 was edited") for p in result.problems), (
        result.problems
    )


def test_an_edit_with_a_recomputed_chain_fails_the_hmac(
    tmp_path: Path, builder: FactsBuilder[CompiledPolicy]
) -> None:
    path = a_log(tmp_path, builder)
    records = [orjson.loads(line) for line in lines_of(path)]
    records[2]["team"] = "someone-else"
    prev = records[1]["hash"]
    for rec in records[2:]:
        rec["prev"] = prev
        rec["hash"] = prev = chain_hash(prev, canonical(rec))
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    assert verify([path]).ok  # without the key a rewritten chain cannot be told
    result = verify([path], key=KEY)
    assert f"{path}:3: record 3: its hmac does not verify: forged" in result.problems


def test_a_deleted_record_is_named(tmp_path: Path, builder: FactsBuilder[CompiledPolicy]) -> None:
    path = a_log(tmp_path, builder)
    lines = lines_of(path)
    del lines[2]
    path.write_bytes(b"".join(lines))
    result = verify([path], key=KEY)
    assert f"{path}:3: 1 record(s) missing before this one (3..3)" in result.problems


def test_reordered_records_are_named(tmp_path: Path, builder: FactsBuilder[CompiledPolicy]) -> None:
    path = a_log(tmp_path, builder)
    lines = lines_of(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_bytes(b"".join(lines))
    problems = verify([path], key=KEY).problems
    assert any(p.startswith(f"{path}:3:") for p in problems), problems
    assert any(p.startswith(f"{path}:4: record 3 is out of order") for p in problems), problems


@pytest.mark.parametrize("cut", ["mid-line", "whole-lines"])
def test_a_truncated_log_is_named(
    tmp_path: Path, builder: FactsBuilder[CompiledPolicy], cut: str
) -> None:
    path = a_log(tmp_path, builder)
    data = path.read_bytes()
    lines = lines_of(path)
    if cut == "mid-line":
        path.write_bytes(data[: len(data) - len(lines[-1]) - 20])
        expected = f"{path}:6: not a whole JSON record"
    else:
        path.write_bytes(b"".join(lines[:-2]))
        expected = f"{path}:5: the file ends without its closing record"
    problems = verify([path], key=KEY).problems
    assert any(p.startswith(expected) for p in problems), problems


def test_rotation_by_size_and_time_chains_the_files(
    tmp_path: Path, builder: FactsBuilder[CompiledPolicy]
) -> None:
    clock = Clock()
    path = tmp_path / "decisions.jsonl"
    with AuditLog(path, hmac_key=KEY, max_bytes=4000, rotate_s=60, clock=clock) as log:
        write(log, builder, 6)
        clock.now += 61  # by age, even when small
        write(log, builder, 1, start=6)
    files = sorted(tmp_path.glob("decisions*.jsonl"))
    assert len(files) >= 3
    shuffled = list(files)
    random.Random(3).shuffle(shuffled)
    result = verify(shuffled, key=KEY)
    assert result.ok, result.render()
    assert len(list(read_log(files[0]))) + sum(len(list(read_log(f))) for f in files[1:]) == 7
    # a whole file taken away: the chain says where
    middle = sorted(files, key=lambda f: orjson.loads(lines_of(f)[0])["seq"])[1]
    rest = [f for f in files if f != middle]
    problems = verify(rest, key=KEY).problems
    assert any("missing before this one" in p for p in problems), problems


def test_a_restart_continues_the_chain(
    tmp_path: Path, builder: FactsBuilder[CompiledPolicy]
) -> None:
    path = tmp_path / "decisions.jsonl"
    with AuditLog(path, hmac_key=KEY) as log:
        write(log, builder, 2)
    crashed = AuditLog(path, hmac_key=KEY)
    write(crashed, builder, 2)
    crashed._file.close()  # type: ignore[union-attr]  # dies without its closing record
    with AuditLog(path, hmac_key=KEY) as log:
        write(log, builder, 1)
    files = list(tmp_path.glob("decisions*.jsonl"))
    assert len(files) == 3
    result = verify(files, key=KEY)
    assert result.ok, result.render()
    assert any("stopped uncleanly" in n for n in result.notes)
    # the live file, not closed yet, passes only with --live
    live = AuditLog(path, hmac_key=KEY)
    write(live, builder, 1)
    files = list(tmp_path.glob("decisions*.jsonl"))
    assert not verify(files, key=KEY).ok
    assert verify(files, key=KEY, live=True).ok
    live.close()


def test_records_hold_names_never_values_and_stay_small(
    tmp_path: Path, builder: FactsBuilder[CompiledPolicy]
) -> None:
    huge = PLANTED * 100_000
    metadata = {f"field-{i}": PLANTED for i in range(100)}
    metadata["note"] = huge
    headers = {f"x-custom-{i}": PLANTED for i in range(100)}
    headers["x-trace-note"] = huge
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "metadata": metadata}
    facts = builder.build(endpoint="chat", body=body, headers=headers)
    path = tmp_path / "decisions.jsonl"
    with AuditLog(path) as log:
        log.write(facts, builder.policy.decide(facts), request_id="r", ts=1.0)
    data = path.read_bytes()
    assert b"planted" not in data and b"4111" not in data and b"AKIA" not in data
    record = orjson.loads(data.splitlines()[1])
    assert len(data.splitlines()[1]) < 8_000
    assert len(record["metadata_names"]) == MAX_NAMES
    assert record["names_left_out"] == {"metadata": 101 - MAX_NAMES, "headers": 101 - MAX_NAMES}


def test_the_audit_verify_command(
    tmp_path: Path,
    builder: FactsBuilder[CompiledPolicy],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_AUDIT_HMAC_KEY", KEY.decode())
    path = a_log(tmp_path, builder)
    assert main(["audit", "verify", str(path)]) == 0
    assert "ok: the chain holds (1 files, 7 records)" in capsys.readouterr().out
    lines = lines_of(path)
    del lines[4]
    path.write_bytes(b"".join(lines))
    assert main(["audit", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:5: 1 record(s) missing" in out and "FAILED" in out
