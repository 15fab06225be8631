"""Is a would-be secret a documentation placeholder rather than a real value?

One judgement, used by every secret rule and by the credential detectors, on the
*variable part* of a value (a token's body after its fixed prefix, a password):

- a reference to a value kept elsewhere: ``${VAR}``, ``{{var}}``, ``$VAR``,
  ``%VAR%``, ``<your-token>``, ``[REDACTED]``, ``os.environ[...]``;
- a filler: masking characters (``xxxx``, ``XXXX``, ``****``, ``####``, ``....``,
  ``••••``) four or more in a row, one character repeated six or more times, a
  run of six or more consecutive letters or digits (``123456``, ``abcdef``);
- a documentation word: ``EXAMPLE`` (AWS's published sample keys end with it),
  ``your``, ``here``, ``sample``, ``dummy``, ``fake``, ``placeholder``,
  ``redacted``, ``insert``, ``replace``, ``foobar``, ``lorem``;
- too little variety for its length: at most three distinct characters, or, from
  16 characters on, a Shannon entropy under 2.5 bits per character (random
  tokens of that length carry 3.5 or more).

What is deliberately *not* a placeholder: ``changeme``, ``password123``,
``admin``, ``test1234`` and other weak passwords. They are defaults people keep,
so a prompt holding ``password=changeme`` does leak a credential that works
somewhere; the gateway fails closed on them. Only a value that cannot be a
credential (a reference, a filler, a documentation word) is let through.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from itertools import pairwise

_REFERENCE = re.compile(
    r"\$\{|\{\{|\$\(|^\$[A-Za-z_]|^%[A-Za-z_][A-Za-z0-9_]*%|<[^<>]{1,60}>|\[[A-Z_ ]{3,}\]"
    r"|(?:os\.environ|os\.getenv|process\.env|ENV\[|getenv\()|&lt;|&gt;|^ENC\[|^vault:|^!vault"
)
_MASK_RUN = re.compile(r"(?:[xX]{4}|\*{4}|#{4}|\.{4}|•{4}|_{6}|-{6})")
_SAME_RUN = re.compile(r"(.)\1{5}")
_WORDS = re.compile(
    r"example|your|here|sample|dummy|fake|placeholder|redacted|insert|replace|foobar|lorem"
    r"|todo|fixme|notreal|not_real|secret_?key_?here|token_?here",
    re.IGNORECASE,
)
_ASCENDING = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DESCENDING = tuple(s[::-1] for s in _ASCENDING)
_SEQUENCE_RUN = 6


def _has_sequence(value: str) -> bool:
    """Whether ``value`` holds six or more consecutive characters of one alphabet
    (``123456``, ``abcdef``, ``987654``)."""
    run = 1
    for a, b in pairwise(value):
        if (
            ord(b) - ord(a) in (1, -1)
            and a.isalnum()
            and b.isalnum()
            and (a.isdigit() == b.isdigit())
        ):
            run += 1
            if run >= _SEQUENCE_RUN:
                return True
        else:
            run = 1
    return False


def entropy(value: str) -> float:
    """Shannon entropy of ``value``'s characters, in bits per character."""
    n = len(value)
    if n == 0:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def is_placeholder(value: str) -> bool:
    """Whether the variable part of a secret is a placeholder (see the module doc)."""
    if not value:
        return True
    if _REFERENCE.search(value) or _MASK_RUN.search(value) or _SAME_RUN.search(value):
        return True
    if _WORDS.search(value) or _has_sequence(value):
        return True
    distinct = len(set(value))
    if distinct <= 3 and len(value) >= 6:
        return True
    return len(value) >= 16 and entropy(value) < 2.5


#: parts of sample tokens that documentation everywhere publishes (jwt.io's example
#: signature, Stripe's documented test key): copies of them are not anyone's secret
PUBLISHED_SAMPLES = (
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
)


def is_published_sample(value: str) -> bool:
    """Whether ``value`` holds a sample token that documentation publishes."""
    return any(sample in value for sample in PUBLISHED_SAMPLES)


def is_reference(value: str) -> bool:
    """Whether ``value`` names a value kept elsewhere (``${VAR}``, ``<token>``, ``$X``)."""
    return _REFERENCE.search(value) is not None


_PASSWORD_WORDS = re.compile(
    r"^(?:x+|\*+|\.+|#+|•+|_+|<.*>|your[_\-\s]?\w*|\w*[_\-]here|example\w*|placeholder\w*"
    r"|redacted|insert[_\-\s]?\w*|replace[_\-\s]?\w*|password|passwort|secret|string|value"
    r"|hidden|none|null|undefined|empty)$",
    re.IGNORECASE,
)


def is_password_placeholder(value: str) -> bool:
    """:func:`is_placeholder` for passwords: references, fillers and documentation
    words only. Weak passwords (``123456``, ``changeme``, ``aaaaaa1``) are real
    passwords here, so sequences, repeats and low entropy do not count."""
    if not value or _REFERENCE.search(value) or _MASK_RUN.search(value):
        return True
    return _PASSWORD_WORDS.search(value) is not None or len(set(value)) == 1
