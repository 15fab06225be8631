"""Sensitivity levels, ordered: ``public < internal < confidential < restricted``."""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    RESTRICTED = 3

    @property
    def label(self) -> str:
        # a tuple lookup: Enum's own ``name`` is a Python-level descriptor, and
        # labels are read several times per request
        return LEVEL_NAMES[self]

    @classmethod
    def parse(cls, value: str) -> Level:
        """Parse a level name (case-insensitive); raises ``ValueError`` otherwise."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(level.label for level in cls)
            raise ValueError(f"unknown sensitivity level {value!r}; use one of: {names}") from None


#: the labels, indexed by level
LEVEL_NAMES: tuple[str, ...] = tuple(level.name.lower() for level in sorted(Level))
assert all(LEVEL_NAMES[level] == level.name.lower() for level in Level)
