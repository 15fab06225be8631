"""Where each datum lives: the key names both backends use.

The in-memory backend uses the same names as Redis so that both behave alike
and the contract tests can damage data the same way in either.

Redis Cluster: a Lua script may only touch keys of one hash slot, so every key
a script touches together carries the same ``{...}`` hash tag: a rate-limit
scope's windows and stream slots share ``{<scope>}``; a team's spend hashes
and its reservations share ``{<team>}``. Braces and ``%`` inside a scope or
team name are percent-escaped so that a name can never close the tag early or
collide with another name.
"""

from __future__ import annotations

from gateway.state.base import Period


def tag(name: str) -> str:
    """``{name}`` with its braces escaped: a hash tag naming exactly ``name``."""
    escaped = name.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return "{" + escaped + "}"


def cache(key: str) -> str:
    return "gw:cache:" + key


def key_record(key_hash: str) -> str:
    return "gw:key:" + key_hash


#: exists once any key has been created (``has_keys`` without scanning)
KEYS_PRESENT = "gw:keys:present"

#: set of every key's hash (for listing keys; the records stay under key_record)
KEY_HASHES = "gw:keys:hashes"

#: set of team names; team records share its tag so one slot holds them all
TEAMS_INDEX = "gw:{teams}:index"


def team(name: str) -> str:
    return "gw:{teams}:team:" + name


def rate_window(scope: str, index: int) -> str:
    return f"gw:rl:{tag(scope)}:{index}"


def streams(scope: str) -> str:
    return f"gw:streams:{tag(scope)}"


def spend(team_name: str, period: Period, start: str) -> str:
    return f"gw:spend:{tag(team_name)}:{period.value}:{start}"


def spend_teams(period: Period, start: str) -> str:
    return f"gw:spend-teams:{period.value}:{start}"


def reservations(team_name: str) -> str:
    return f"gw:resv:{tag(team_name)}"
