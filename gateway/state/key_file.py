"""API keys in a file the platform engineer owns: the embedded default's key store.

Without Redis, keys live in one JSON file (``GATEWAY_KEYS_FILE``, default
``./gateway-keys.json``)::

    {"keys": [{"hash": "<sha-256 hex>", "key_id": "...", "team": "...", ...}],
     "teams": [{"team": "...", "budget": {"usd": 5.0, "period": "month"}, ...}]}

Contract:

* Only hashes are stored, never a key (see :mod:`gateway.state.api_keys`);
  the file is written with mode 0600, atomically (a temporary file renamed
  over it), under an advisory lock so that ``gateway keys`` and the admin API
  of a running gateway never lose each other's writes.
* The file is re-read when its size or modification time changed, checked at
  most every :data:`CHECK_INTERVAL_S` seconds, so an edit or a
  ``gateway keys revoke`` reaches the running gateway within that time (plus
  the authenticator's own cache, :data:`gateway.quota.auth.FRESH_S`).
* A file that does not parse or has a wrong shape is refused as a whole: the
  last good contents stay in force and :attr:`FileKeyStore.error` says what
  is wrong (``/readyz`` shows it). With no good contents at all (a corrupt
  file at start), the store fails closed: every call raises
  :class:`StateUnavailable`, so keys are never skipped and the gateway does
  not run open. Writes refuse to replace a corrupt file.
* A missing file is an empty store: the gateway runs open, and says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from gateway.state.api_keys import (
    NO_LIMITS,
    hash_key,
    key_record_from_json,
    key_record_json,
    new_key,
    new_record,
    plausible_key,
    team_record_from_json,
    team_record_json,
)
from gateway.state.base import Budget, KeyLimits, KeyRecord, StateUnavailable, TeamRecord

logger = logging.getLogger("gateway.state")

#: how often the file's size and modification time are looked at
CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class KeyFileContents:
    #: key hash -> record
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    teams: dict[str, TeamRecord] = field(default_factory=dict)


@dataclass(slots=True)
class _Edit:
    keys: dict[str, KeyRecord]
    teams: dict[str, TeamRecord]


class KeyFileError(ValueError):
    """The keys file cannot be used; the message names the file and the problem."""


def parse_key_file(raw: bytes, path: Path) -> KeyFileContents:
    """The contents of a keys file; raises :class:`KeyFileError`."""
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise KeyFileError(f"keys file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise KeyFileError(f"keys file {path}: expected an object with 'keys' and 'teams'")
    unknown = set(data) - {"keys", "teams"}
    if unknown:
        raise KeyFileError(f"keys file {path}: unknown section(s) {sorted(unknown)}")
    keys: dict[str, KeyRecord] = {}
    teams: dict[str, TeamRecord] = {}
    for i, entry in enumerate(_list(data.get("keys", []), path, "keys")):
        try:
            key_hash, record = key_record_from_json(entry)
        except (TypeError, ValueError) as exc:
            raise KeyFileError(f"keys file {path}: keys[{i}]: {exc}") from None
        keys[key_hash] = record
    for i, entry in enumerate(_list(data.get("teams", []), path, "teams")):
        try:
            team = team_record_from_json(entry)
        except (TypeError, ValueError) as exc:
            raise KeyFileError(f"keys file {path}: teams[{i}]: {exc}") from None
        teams[team.team] = team
    return KeyFileContents(keys, teams)


def _list(value: Any, path: Path, section: str) -> list[Any]:
    if not isinstance(value, list):
        raise KeyFileError(f"keys file {path}: '{section}' must be a list")
    return value


def render_key_file(contents: KeyFileContents) -> bytes:
    return orjson.dumps(
        {
            "keys": [key_record_json(h, r) for h, r in contents.keys.items()],
            "teams": [team_record_json(t) for t in contents.teams.values()],
        },
        option=orjson.OPT_INDENT_2,
    )


class FileKeyStore:
    """A :class:`~gateway.state.base.KeyStore` over one JSON file (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._clock = clock
        self._monotonic = monotonic
        self._contents: KeyFileContents | None = None
        self._signature: tuple[int, int] | None = None
        self._checked_at = -CHECK_INTERVAL_S
        #: why the file on disk is not in force, if it is not
        self.error: str | None = None
        self._refresh(force=True)

    # -- reading -------------------------------------------------------------

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyFileError(f"keys file {self.path}: {exc.strerror or exc}") from None
        return (st.st_size, st.st_mtime_ns)

    def _refresh(self, *, force: bool = False) -> None:
        now = self._monotonic()
        if not force and now - self._checked_at < CHECK_INTERVAL_S:
            return
        self._checked_at = now
        try:
            signature = self._stat()
            if signature == self._signature and self._contents is not None:
                return
            contents = self._read() if signature is not None else KeyFileContents()
        except KeyFileError as exc:
            if self.error != str(exc):
                logger.error("%s; %s", exc, self._keeping())
            self.error = str(exc)
            return
        if self.error is not None:
            logger.info("keys file %s is valid again", self.path)
        self._contents, self._signature, self.error = contents, signature, None

    def _keeping(self) -> str:
        if self._contents is None:
            return "no keys can be checked until it is fixed (requests get 503)"
        return f"the last good keys ({len(self._contents.keys)}) stay in force"

    def _read(self) -> KeyFileContents:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return KeyFileContents()
        except OSError as exc:
            raise KeyFileError(f"keys file {self.path}: {exc.strerror or exc}") from None
        return parse_key_file(raw, self.path)

    def _current(self) -> KeyFileContents:
        self._refresh()
        if self._contents is None:
            raise StateUnavailable(self.error or f"keys file {self.path} cannot be read")
        return self._contents

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[_Edit]:
        """Lock, read what is on disk now, let the caller change it, write it back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            try:
                contents = self._read()  # refuses to overwrite a corrupt file
            except KeyFileError as exc:
                raise KeyFileError(f"{exc}; fix or remove it before changing keys") from None
            box = _Edit(dict(contents.keys), dict(contents.teams))
            yield box
            self._write(KeyFileContents(box.keys, box.teams))
        self._refresh(force=True)

    def _write(self, contents: KeyFileContents) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(render_key_file(contents))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # -- the KeyStore interface -------------------------------------------------

    async def create_key(
        self,
        team: str,
        *,
        limits: KeyLimits = NO_LIMITS,
        budget: Budget | None = None,
        policy: str | None = None,
        expires_at: float | None = None,
        name: str | None = None,
    ) -> tuple[str, KeyRecord]:
        plaintext = new_key()
        key_hash = hash_key(plaintext)
        record = new_record(
            key_hash,
            team,
            limits=limits,
            budget=budget,
            policy=policy,
            now=self._clock(),
            expires_at=expires_at,
            name=name,
        )
        with self._editing() as box:
            box.keys[key_hash] = record
        return plaintext, record

    async def authenticate(self, presented: str) -> KeyRecord | None:
        contents = self._current()
        if not plausible_key(presented):
            return None
        presented_hash = hash_key(presented)
        # found by its hash, as Redis finds a record by the name built from it
        record = contents.keys.get(presented_hash)
        if record is None:
            return None
        return record if record.usable(self._clock()) else None

    async def has_keys(self) -> bool:
        return bool(self._current().keys)

    async def list_keys(self) -> list[KeyRecord]:
        return sorted(self._current().keys.values(), key=lambda r: r.created_at)

    async def key_pages(self, size: int = 500) -> AsyncIterator[list[KeyRecord]]:
        yield list(self._current().keys.values())

    async def update_key(self, record: KeyRecord) -> bool:
        with self._editing() as box:
            for key_hash, old in box.keys.items():
                if old.key_id == record.key_id:
                    box.keys[key_hash] = replace(record)
                    return True
        return False

    async def set_team(self, record: TeamRecord) -> None:
        with self._editing() as box:
            box.teams[record.team] = record

    async def get_team(self, team: str) -> TeamRecord | None:
        return self._current().teams.get(team)

    async def list_teams(self) -> list[TeamRecord]:
        return sorted(self._current().teams.values(), key=lambda t: t.team)
