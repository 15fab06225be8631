"""API keys and their records: format, hashing, and the JSON both backends store.

A key is ``gw-`` followed by 43 URL-safe random characters
(:func:`secrets.token_urlsafe` of 32 bytes, 256 bits). The gateway never stores
a key: only its SHA-256 hex digest, unpeppered. A pepper would add nothing
against an attacker who can read the store, since 256 random bits cannot be
brute-forced from their hash; and an unpeppered hash keeps records portable
between replicas without another secret to distribute.

``key_id`` is the first 12 hex characters of the hash: safe to log and to show
in reports, useless for authenticating.

Records are JSON. A record that does not parse or has the wrong shape is
treated as missing and logged on the ``gateway.state`` logger; decoding never
raises.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

import orjson

from gateway.state.base import Budget, KeyLimits, KeyRecord, Period, TeamRecord

logger = logging.getLogger("gateway.state")

KEY_PREFIX = "gw-"
#: bytes of randomness in a key; token_urlsafe(32) gives 43 characters
KEY_RANDOM_BYTES = 32
#: presented keys shorter than this cannot be ours and are refused before hashing
MIN_KEY_LENGTH = len(KEY_PREFIX) + 40
#: presented keys longer than this are refused too: hashing megabytes is not free
MAX_KEY_LENGTH = 256
KEY_ID_LENGTH = 12
#: the default limits of a new key: none (frozen, so one shared instance is safe)
NO_LIMITS = KeyLimits()


def new_key() -> str:
    """A fresh plaintext key: ``gw-`` + 43 URL-safe random characters."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_key(presented: str) -> str:
    """SHA-256 hex digest of a key: the only form in which a key is stored."""
    return hashlib.sha256(presented.encode("utf-8")).hexdigest()


def key_id_of(key_hash: str) -> str:
    """The loggable id of a key: the first 12 hex characters of its hash."""
    return key_hash[:KEY_ID_LENGTH]


def plausible_key(presented: str) -> bool:
    """Could ``presented`` be a key this gateway issued? (prefix and length only)"""
    return presented.startswith(KEY_PREFIX) and MIN_KEY_LENGTH <= len(presented) <= MAX_KEY_LENGTH


def hashes_match(stored_hash: str, presented_hash: str) -> bool:
    """Constant-time comparison of a stored hash with a presented key's hash."""
    return hmac.compare_digest(stored_hash.encode("ascii"), presented_hash.encode("ascii"))


# --- JSON records ------------------------------------------------------------


def _limits_json(limits: KeyLimits) -> dict[str, int | None]:
    return {"rpm": limits.rpm, "tpm": limits.tpm, "max_streams": limits.max_streams}


def _budget_json(budget: Budget | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {"usd": budget.usd, "period": budget.period.value}


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer or null, got {type(value).__name__}")
    return value


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string or null, got {type(value).__name__}")


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _limits(raw: Any) -> KeyLimits:
    if not isinstance(raw, dict):
        raise TypeError("limits must be an object")
    return KeyLimits(
        rpm=_opt_int(raw.get("rpm")),
        tpm=_opt_int(raw.get("tpm")),
        max_streams=_opt_int(raw.get("max_streams")),
    )


def _budget(raw: Any) -> Budget | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError("budget must be an object or null")
    return Budget(usd=_float(raw.get("usd")), period=Period(_str(raw.get("period"))))


def key_record_json(key_hash: str, record: KeyRecord) -> dict[str, Any]:
    """The stored form of a key's record, as JSON-ready data; it carries the
    full hash for the constant-time check of the key."""
    return {
        "hash": key_hash,
        "key_id": record.key_id,
        "team": record.team,
        "limits": _limits_json(record.limits),
        "budget": _budget_json(record.budget),
        "policy": record.policy,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "name": record.name,
    }


def key_record_from_json(data: Any) -> tuple[str, KeyRecord]:
    """``(stored hash, record)``; raises TypeError or ValueError on a wrong shape."""
    if not isinstance(data, dict):
        raise TypeError("a key record must be an object")
    expires, revoked = data.get("expires_at"), data.get("revoked_at")
    record = KeyRecord(
        key_id=_str(data.get("key_id")),
        team=_str(data.get("team")),
        limits=_limits(data.get("limits", {})),
        budget=_budget(data.get("budget")),
        policy=_opt_str(data.get("policy")),
        created_at=_float(data.get("created_at", 0.0)),
        expires_at=None if expires is None else _float(expires),
        revoked_at=None if revoked is None else _float(revoked),
        name=_opt_str(data.get("name")),
    )
    key_hash = _str(data.get("hash"))
    if key_id_of(key_hash) != record.key_id:
        raise ValueError(f"key {record.key_id}: its id is not the start of its hash")
    return key_hash, record


def encode_key_record(key_hash: str, record: KeyRecord) -> bytes:
    """The stored form of a key's record (see :func:`key_record_json`)."""
    return orjson.dumps(key_record_json(key_hash, record))


def decode_key_record(raw: bytes | str, *, where: str) -> tuple[str, KeyRecord] | None:
    """``(stored hash, record)``, or None (logged) when ``raw`` is corrupt."""
    try:
        return key_record_from_json(orjson.loads(raw))
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        logger.warning("corrupt key record at %s treated as missing: %s", where, exc)
        return None


def team_record_json(record: TeamRecord) -> dict[str, Any]:
    return {
        "team": record.team,
        "limits": _limits_json(record.limits),
        "budget": _budget_json(record.budget),
        "policy": record.policy,
    }


def team_record_from_json(data: Any) -> TeamRecord:
    """The team's record; raises TypeError or ValueError on a wrong shape."""
    if not isinstance(data, dict):
        raise TypeError("a team record must be an object")
    return TeamRecord(
        team=_str(data.get("team")),
        limits=_limits(data.get("limits", {})),
        budget=_budget(data.get("budget")),
        policy=_opt_str(data.get("policy")),
    )


def new_record(
    key_hash: str,
    team: str,
    *,
    limits: KeyLimits,
    budget: Budget | None,
    policy: str | None,
    now: float,
    expires_at: float | None,
    name: str | None,
) -> KeyRecord:
    """The record of a key just made."""
    return KeyRecord(
        key_id=key_id_of(key_hash),
        team=team,
        limits=limits,
        budget=budget,
        policy=policy,
        created_at=now,
        expires_at=expires_at,
        name=name,
    )


def encode_team_record(record: TeamRecord) -> bytes:
    return orjson.dumps(team_record_json(record))


def decode_team_record(raw: bytes | str, *, where: str) -> TeamRecord | None:
    """The team's record, or None (logged) when ``raw`` is corrupt."""
    try:
        return team_record_from_json(orjson.loads(raw))
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        logger.warning("corrupt team record at %s treated as missing: %s", where, exc)
        return None
