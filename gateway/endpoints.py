"""The OpenAI endpoints the gateway serves, by their path under ``/v1/``.

A core name shared by every layer: the edge maps paths to it, judging
validates a body per endpoint, the policy matches on it, providers call it.
"""

from __future__ import annotations

from enum import StrEnum


class Endpoint(StrEnum):
    CHAT = "chat/completions"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    #: OpenAI's Responses API, called only on targets that speak it natively
    RESPONSES = "responses"
