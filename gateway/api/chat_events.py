"""Reading the pipeline's chat SSE bytes, event by event, for re-encoding.

:class:`ChatEvents` buffers chunks, splits them into events and hands each
``data:`` payload to :meth:`ChatEvents._payload`; the Messages and Responses
event streams are its subclasses. Once ``_ended`` is set, the rest is ignored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class ChatEvents(ABC):
    def __init__(self) -> None:
        self._buffer = b""
        self._ended = False

    def feed(self, chunk: bytes) -> bytes:
        """The re-encoded bytes of every complete event ``chunk`` finishes."""
        self._buffer += chunk
        out: list[bytes] = []
        while not self._ended:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                break
            event, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    out.extend(self._payload(line[6:]))
        return b"".join(out)

    @abstractmethod
    def _payload(self, payload: bytes) -> list[bytes]:
        """The re-encoded events of one chat event's payload (``[DONE]`` included)."""
