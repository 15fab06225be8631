"""Prompt-token estimates without a tokenizer and without the network.

The estimate is a linear model over the UTF-8 text: a weight per byte class
(ASCII letters, digits, punctuation, spaces, newlines, and the lead bytes of
2-, 3- and 4-byte characters) plus one per indented line. It costs one
``bytes.translate`` and a C-level sum, about 10 µs for 4 KB.

The weights were fitted against tiktoken's ``cl100k_base`` on English prose,
source code, JSON, SQL, numbers, European languages and CJK text; on such text
the estimate stays within about ±20% of ``cl100k_base`` (o200k_base counts
fewer tokens for non-English text, so against it the estimate errs high, the
safe side for budgets and context limits). ``tests/judging/test_tokens.py``
checks the bound with tiktoken when an encoding can be loaded offline.

:func:`estimate_request_tokens` adds the chat framing: :data:`MESSAGE_OVERHEAD`
tokens per message, :data:`REPLY_PRIMING` per request, tool definitions as
their JSON, :data:`IMAGE_TOKENS` per non-text content part, and the strings of
every other field that carries text (``response_format``, ``stop``,
``metadata``, unknown fields: all reach the model), found by the one walk
(:mod:`gateway.judging.walk`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.judging.walk import walk

#: tokens of framing per chat message (role, separators), as OpenAI documents
MESSAGE_OVERHEAD = 4
#: tokens that prime the assistant's reply in every chat request
REPLY_PRIMING = 3
#: a fixed charge for an image (or other non-text) part: OpenAI's low-detail cost;
#: the size of a high-detail image is not known without decoding it
IMAGE_TOKENS = 85

# Weights fitted (least squares on the log ratio) against cl100k_base, in
# tokens per byte of each class. The UTF-8 lead byte carries a multi-byte
# character's weight; continuation bytes weigh nothing.
_W_LETTER = 0.224
_W_DIGIT = 0.94
_W_PUNCT = 0.392
_W_SPACE = 0.09
_W_NEWLINE = 0.568
#: an indented line: its leading whitespace is one extra token
_W_INDENT = 0.727
#: 0xC2-0xCD lead Latin-1 supplement and Latin extended characters: an accent
#: splits a word into several tokens
_W_LATIN_EXT = 1.916
#: 0xCE-0xDF lead Greek, Cyrillic, Hebrew, Arabic: whole alphabets, a couple
#: of characters per token
_W_ALPHABET = 0.48
#: 0xE0-0xEF lead 3-byte characters: CJK, kana, Hangul, typographic punctuation
_W_WIDE = 1.1
#: 0xF0-0xF4 lead 4-byte characters: emoji, rare CJK
_W_EMOJI = 2.5

#: weights are stored as integers in units of 1/_SCALE token
_SCALE = 40
#: the largest stored weight is 100, so a chunk of this many bytes sums to
#: less than 65521, the modulus of Adler-32 (see :func:`_weighted_sum`)
_CHUNK = 640


def _byte_weight(byte: int) -> float:
    char = chr(byte)
    if byte < 128:
        if char.isalpha():
            return _W_LETTER
        if char.isdigit():
            return _W_DIGIT
        if 33 <= byte < 127:
            return _W_PUNCT
        if byte == 10:
            return _W_NEWLINE
        if byte in (9, 32):
            return _W_SPACE
        return _W_LETTER  # other control characters: rare
    if 0xC2 <= byte <= 0xCD:
        return _W_LATIN_EXT
    if 0xCE <= byte <= 0xDF:
        return _W_ALPHABET
    if 0xE0 <= byte <= 0xEF:
        return _W_WIDE
    if 0xF0 <= byte <= 0xF4:
        return _W_EMOJI
    return 0.0  # continuation bytes, invalid leads


_WEIGHTS = bytes(round(_byte_weight(byte) * _SCALE) for byte in range(256))


def _weighted_sum(data: bytes) -> int:
    """Sum of the bytes' weights, in units of 1/_SCALE token.

    Python has no fast byte histogram, but Adler-32's low half is ``sum(bytes)
    mod 65521``, computed in C: map every byte to its weight with one
    ``translate``, then add the sums of chunks small enough never to wrap.
    """
    if len(data) <= _CHUNK:
        return zlib.adler32(data.translate(_WEIGHTS), 0) & 0xFFFF
    weights = memoryview(data.translate(_WEIGHTS))
    return sum(
        zlib.adler32(weights[start : start + _CHUNK], 0) & 0xFFFF
        for start in range(0, len(weights), _CHUNK)
    )


def estimate_tokens(text: str) -> int:
    """Estimated ``cl100k_base`` token count of ``text`` (0 for empty text, else ≥ 1)."""
    if not text:
        return 0
    data = text.encode("utf-8", "surrogatepass")
    indented = data.count(b"\n ")
    if "\t" in text:  # a str test: ``bytes in bytes`` costs several times more
        indented += data.count(b"\n\t")
    estimate = _weighted_sum(data) / _SCALE + _W_INDENT * indented
    return max(1, round(estimate))


def _content_tokens(content: Any) -> int:
    """Tokens of a message ``content``: a string, or a list of typed parts."""
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_tokens(content)
    if isinstance(content, Sequence):
        total = 0
        for part in content:
            if isinstance(part, str):
                total += estimate_tokens(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    total += estimate_tokens(text)
                elif part.get("type") not in (None, "text"):
                    total += IMAGE_TOKENS
        return total
    return _json_tokens(content)


def _json_tokens(value: Any) -> int:
    try:
        encoded = orjson.dumps(value, default=str)
    except TypeError:
        # values orjson cannot encode even through ``str`` (e.g. huge ints)
        return estimate_tokens(str(value))
    return estimate_tokens(encoded.decode("utf-8"))


def _tool_call_tokens(calls: Any) -> int:
    if not isinstance(calls, Sequence) or isinstance(calls, str):
        return 0
    total = 0
    for call in calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        if isinstance(function, Mapping):
            for key in ("name", "arguments"):
                value = function.get(key)
                if isinstance(value, str):
                    total += estimate_tokens(value)
        total += MESSAGE_OVERHEAD
    return total


def _message_tokens(message: Any) -> int:
    # dict first: the JSON parser's type, checked without the ABC machinery
    if type(message) is not dict and not isinstance(message, Mapping):
        return MESSAGE_OVERHEAD
    content = message.get("content")
    total = MESSAGE_OVERHEAD + (
        estimate_tokens(content) if type(content) is str else _content_tokens(content)
    )
    name = message.get("name")
    if isinstance(name, str):
        total += estimate_tokens(name)
    calls = message.get("tool_calls")
    if calls is not None:
        total += _tool_call_tokens(calls)
    function_call = message.get("function_call")
    if function_call is not None and isinstance(function_call, Mapping):
        total += _tool_call_tokens([{"function": function_call}])
    return total


def _prompt_tokens(prompt: Any) -> int:
    """Completions ``prompt`` / embeddings ``input``: str, [str], [int] or [[int]]."""
    if prompt is None:
        return 0
    if isinstance(prompt, str):
        return estimate_tokens(prompt)
    if isinstance(prompt, Sequence):
        total = 0
        for item in prompt:
            if isinstance(item, str):
                total += estimate_tokens(item)
            elif isinstance(item, int):
                # already token ids: one each
                total += 1
            elif isinstance(item, Sequence):
                total += _prompt_tokens(item)
        return total
    return 0


def estimate_request_tokens(body: Mapping[str, Any]) -> int:
    """Estimated prompt tokens of an OpenAI chat, completions or embeddings body.

    Chat: each message costs :data:`MESSAGE_OVERHEAD` plus its content, name and
    tool calls; the request adds :data:`REPLY_PRIMING`, and ``tools`` /
    ``functions`` count as their JSON. Completions count ``prompt``; embeddings
    count ``input`` (token-id arrays count one per id). Malformed shapes count
    what can be read and never raise.
    """
    total = 0
    messages = body.get("messages")
    if type(messages) is list or (isinstance(messages, Sequence) and not isinstance(messages, str)):
        total += REPLY_PRIMING
        for message in messages:
            total += _message_tokens(message)
    for key in ("tools", "functions"):
        definitions = body.get(key)
        if definitions:
            total += _json_tokens(definitions)
    for key in ("prompt", "input"):
        prompt = body.get(key)
        if prompt is not None:
            total += _prompt_tokens(prompt)
    if not _READ.issuperset(body):
        # every other field reaches the model too: count its strings, keys and values
        for key, value in body.items():
            if key not in _READ and (type(value) is str or isinstance(value, dict | list)):
                total += sum(estimate_tokens(text) for text in walk(value).strings)
    return total


#: the fields read above, and the scalar parameters that hold no text
_READ = frozenset(
    {"model", "messages", "tools", "functions", "prompt", "input", "stream", "max_tokens",
     "max_completion_tokens", "temperature", "top_p", "n", "seed", "presence_penalty",
     "frequency_penalty", "logprobs", "top_logprobs", "parallel_tool_calls", "dimensions",
     "encoding_format", "best_of", "echo", "store", "stream_options", "tool_choice"}
)  # fmt: skip
