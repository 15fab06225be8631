"""Problems found in policy files, and the error that carries them.

Every problem names the file and line it comes from, the rule it sits in (when
it sits in one), what is wrong and how to fix it. Errors refuse the policy;
warnings are reported and the policy loads.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    file: Path | None
    line: int | None  # 1-based
    rule: str | None
    message: str
    fix: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def location(self) -> str:
        where = str(self.file) if self.file is not None else "<policy>"
        if self.line is not None:
            where += f":{self.line}"
        return where

    def __str__(self) -> str:
        head = f"{self.location}: {self.severity.value}"
        if self.rule is not None:
            head += f" in rule '{self.rule}'"
        text = f"{head}: {self.message}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


class PolicyError(Exception):
    """A policy could not be loaded. ``problems`` holds every error (and warning) found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(self.report())

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    def report(self) -> str:
        errors = len(self.errors)
        lines = [f"policy refused: {errors} error{'s' if errors != 1 else ''}"]
        lines.extend(str(problem) for problem in self.problems)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest choice, or ``None`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def one_of(choices: Iterable[str]) -> str:
    names = sorted(choices)
    return "use one of: " + ", ".join(names) if names else "none is defined yet"


def suggest(word: str, choices: Iterable[str]) -> str:
    """A fix for an unknown name: the closest choice, else the list of valid ones."""
    options = list(choices)
    return did_you_mean(word, options) or one_of(options)
