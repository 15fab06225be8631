"""The keys file: the embedded default's key store (hashes only, hot reload,
last good kept on a bad edit, fail closed with nothing good)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import orjson
import pytest

from gateway.state.base import Budget, KeyLimits, Period, StateUnavailable, TeamRecord
from gateway.state.key_file import FileKeyStore


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 100.0

    def tick(self, seconds: float = 1.1) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def store(path: Path, clocks: Clocks) -> FileKeyStore:
    return FileKeyStore(path, lambda: clocks.wall, lambda: clocks.mono)


async def test_missing_file_is_an_empty_store(tmp_path: Path, clocks: Clocks) -> None:
    keys = store(tmp_path / "keys.json", clocks)
    assert not await keys.has_keys()
    assert keys.error is None


async def test_keys_are_stored_as_hashes_only_in_a_private_file(
    tmp_path: Path, clocks: Clocks
) -> None:
    path = tmp_path / "keys.json"
    keys = store(path, clocks)
    plaintext, record = await keys.create_key(
        "research", limits=KeyLimits(rpm=5), budget=Budget(2.0, Period.DAY)
    )
    raw = path.read_bytes()
    assert plaintext.encode() not in raw and plaintext[3:].encode() not in raw
    assert hashlib.sha256(plaintext.encode()).hexdigest().encode() in raw
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert await keys.authenticate(plaintext) == record
    # another process (the CLI) sees it
    assert await store(path, clocks).authenticate(plaintext) == record


async def test_an_edit_reaches_a_running_store_within_the_check_interval(
    tmp_path: Path, clocks: Clocks
) -> None:
    path = tmp_path / "keys.json"
    running, cli = store(path, clocks), store(path, clocks)
    plaintext, record = await cli.create_key("t")
    clocks.tick()
    assert await running.authenticate(plaintext) == record
    from dataclasses import replace

    await cli.update_key(replace(record, revoked_at=clocks.wall))
    clocks.tick()
    assert await running.authenticate(plaintext) is None
    assert [r.key_id for r in await running.list_keys()] == [record.key_id]


async def test_a_bad_edit_keeps_the_last_good_keys(tmp_path: Path, clocks: Clocks) -> None:
    path = tmp_path / "keys.json"
    keys = store(path, clocks)
    plaintext, record = await keys.create_key("t")
    path.write_text('{"keys": [{"hash": "oops"}]')  # truncated by a bad edit
    clocks.tick()
    assert await keys.authenticate(plaintext) == record
    assert keys.error is not None and "not valid JSON" in keys.error
    path.write_text('{"keys": [{"hash": 1}], "teams": []}')
    clocks.tick()
    assert await keys.authenticate(plaintext) == record
    assert keys.error is not None and "keys[0]" in keys.error
    # and writes refuse to replace the broken file
    with pytest.raises(ValueError, match="fix or remove it"):
        await keys.create_key("t2")
    # fixed: in force again
    path.write_text(orjson.dumps({"keys": [], "teams": []}).decode())
    clocks.tick()
    assert await keys.authenticate(plaintext) is None
    assert keys.error is None


async def test_a_corrupt_file_at_start_fails_closed(tmp_path: Path, clocks: Clocks) -> None:
    path = tmp_path / "keys.json"
    path.write_text("not json at all")
    keys = store(path, clocks)
    assert keys.error is not None
    with pytest.raises(StateUnavailable):
        await keys.has_keys()
    with pytest.raises(StateUnavailable):
        await keys.authenticate("gw-" + "a" * 43)


async def test_expired_keys_do_not_authenticate(tmp_path: Path, clocks: Clocks) -> None:
    keys = store(tmp_path / "keys.json", clocks)
    plaintext, _ = await keys.create_key("t", expires_at=clocks.wall + 60)
    assert await keys.authenticate(plaintext) is not None
    clocks.tick(61)
    assert await keys.authenticate(plaintext) is None


async def test_teams_round_trip(tmp_path: Path, clocks: Clocks) -> None:
    path = tmp_path / "keys.json"
    keys = store(path, clocks)
    team = TeamRecord("t", limits=KeyLimits(tpm=100), budget=Budget(1.5), policy="p")
    await keys.set_team(team)
    assert await store(path, clocks).get_team("t") == team
    assert await keys.list_teams() == [team]
