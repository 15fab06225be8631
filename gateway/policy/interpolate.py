"""``${VAR}`` and ``${VAR:-default}`` in policy values.

The environment is a mapping handed in by :mod:`gateway.settings`; this module
never reads the process environment. Defaults may nest (``${A:-${B:-x}}``) and ``$$``
is a literal ``$``. ``${VAR:-}`` is the empty string when ``VAR`` is unset or
empty, as in the shell. An unset variable with no default is reported by name
(and replaced by ``""``) so the caller decides whether that is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationSyntaxError(ValueError):
    """A ``${`` that does not close, or a bad variable name."""


@dataclass(frozen=True, slots=True)
class Interpolated:
    text: str
    #: variables that were unset and had no default, in order of appearance
    missing: tuple[str, ...] = ()
    #: every variable referenced, set or not
    names: tuple[str, ...] = ()


def interpolate(text: str, environ: Mapping[str, str]) -> Interpolated:
    if "$" not in text:
        return Interpolated(text)
    out, missing, names, _end = _expand(text, 0, environ, nested=False)
    return Interpolated("".join(out), tuple(missing), tuple(names))


def _expand(
    text: str, pos: int, environ: Mapping[str, str], *, nested: bool
) -> tuple[list[str], list[str], list[str], int]:
    out: list[str] = []
    missing: list[str] = []
    names: list[str] = []
    i = pos
    while i < len(text):
        ch = text[i]
        if nested and ch == "}":
            return out, missing, names, i
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt != "{":
            out.append("$")
            i += 1
            continue
        match = _NAME.match(text, i + 2)
        if match is None:
            raise InterpolationSyntaxError(f"bad variable name after '${{' at column {i + 1}")
        name = match.group(0)
        names.append(name)
        j = match.end()
        value = environ.get(name)
        if text.startswith("}", j):
            if value is None:
                missing.append(name)
                value = ""
            out.append(value)
            i = j + 1
            continue
        if not text.startswith(":-", j):
            raise InterpolationSyntaxError(
                f"expected '}}' or ':-' after '${{{name}' (write ${{{name}}} or ${{{name}:-default}})"
            )
        inner, inner_missing, inner_names, close = _expand(text, j + 2, environ, nested=True)
        if close >= len(text):
            raise InterpolationSyntaxError(f"'${{{name}:-' is not closed with '}}'")
        names.extend(inner_names)
        if value:
            out.append(value)
        else:
            out.extend(inner)
            missing.extend(inner_missing)
        i = close + 1
    if nested:
        return out, missing, names, len(text)
    return out, missing, names, i
