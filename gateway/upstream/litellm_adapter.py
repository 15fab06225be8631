"""Proprietary APIs that need translation (Anthropic, Gemini, Mistral, Bedrock,
Azure, ...), reached through litellm.

This is the only module that imports litellm, and it does so lazily: the first
call (or :meth:`LiteLLMProvider.warm_up`) imports it in a worker thread, because
the import takes seconds and must neither slow ``import gateway`` nor block the
event loop.

Contract, on top of :class:`gateway.upstream.provider.Provider`:

* litellm is given only what :func:`gateway.upstream.litellm_request.build_kwargs`
  builds: the allowed OpenAI fields of the body, never a field that would let a
  client steer the call, plus what the target decides; litellm never retries.
* Answers are projected onto OpenAI's wire shape: litellm's extra fields are
  left out, a stream keeps one ``id``, and when the client asked for
  ``stream_options.include_usage`` the usage comes in a final chunk whose
  ``choices`` is empty (and only then).
* Failures are mapped by exception class, never by message text, onto
  :mod:`gateway.errors`; the client sees the provider's own message with the
  target's API key scrubbed out. A stream raises everything that fails before
  its first chunk from the first ``__anext__``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import orjson

from gateway.endpoints import Endpoint
from gateway.errors import (
    InvalidRequest,
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from gateway.settings import prepare_litellm_import
from gateway.targets import Target
from gateway.upstream.litellm_request import build_kwargs, wants_usage
from gateway.upstream.litellm_wire import StreamShaper, shape_response
from gateway.upstream.provider import UpstreamCall, UpstreamReply


def load_litellm() -> Any:
    """Import litellm and set its process-wide switches; safe to call again.

    These globals are set here and nowhere else. ``LITELLM_LOCAL_MODEL_COST_MAP``
    must be in the environment before the import, which otherwise fetches the
    model cost map over the network (see :func:`gateway.settings.prepare_litellm_import`).
    """
    prepare_litellm_import()
    import litellm

    litellm.suppress_debug_info = True
    # Older litellm releases ping a telemetry endpoint unless told not to.
    litellm.telemetry = False
    # Nothing leaves through litellm's logging integrations: no callbacks at all.
    litellm.callbacks = []
    litellm.input_callback = []
    litellm.success_callback = []
    litellm.failure_callback = []
    litellm.service_callback = []
    litellm._async_success_callback = []
    litellm._async_failure_callback = []
    litellm.turn_off_message_logging = True
    # One HTTP stack (httpx) for every provider: it is what the tests intercept,
    # and litellm's optional aiohttp transport would bypass that.
    litellm.disable_aiohttp_transport = True
    return litellm


# --- errors -----------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it, following litellm's wrappers."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        original = getattr(current, "original_exception", None)
        if isinstance(original, BaseException) and id(original) not in seen:
            current = original
        else:
            current = current.__cause__ or current.__context__


def _retry_after_s(exc: BaseException) -> float | None:
    for cause in _causes(exc):
        headers = getattr(cause, "litellm_response_headers", None) or getattr(
            cause, "headers", None
        )
        if not isinstance(headers, Mapping):
            continue
        for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            raw = headers.get(name)
            if raw is None:
                continue
            try:
                return float(raw) / scale
            except ValueError:
                # an HTTP date rather than seconds: the caller's default pause applies
                return None
    return None


def _provider_message(exc: BaseException, api_key: str | None) -> str:
    """The provider's own error message when its error body has one, else
    litellm's; with the target's key scrubbed out either way."""
    import httpx

    message = str(exc)
    for cause in _causes(exc):
        if not isinstance(cause, httpx.HTTPStatusError):
            continue
        try:
            body = orjson.loads(cause.response.content)
        except (httpx.ResponseNotRead, orjson.JSONDecodeError):
            continue
        # Anthropic, Gemini, OpenAI and Mistral all answer {"error": {"message": ...}}
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
            break
    if api_key:
        message = message.replace(api_key, "[redacted]")
    return message


def _upstream_status(exc: BaseException, default: int) -> int:
    """The status the provider really answered (litellm reports 529 as 500)."""
    for cause in _causes(exc):
        status = getattr(cause, "status_code", None)
        synthesized = getattr(cause, "status_code_is_synthesized", False)
        if cause is not exc and isinstance(status, int) and 400 <= status < 600 and not synthesized:
            return status
    return default


def upstream_failures() -> tuple[type[Exception], ...]:
    """What a litellm call raises when the upstream fails: litellm's exceptions
    (all subclasses of the ``openai`` SDK's), httpx's, and our own deadline."""
    import httpx
    import openai

    return (openai.OpenAIError, httpx.HTTPError, TimeoutError)


def map_error(litellm: Any, exc: BaseException, target: Target) -> UpstreamError:
    """The gateway error for one of :func:`upstream_failures`, chosen by class."""
    import httpx

    failures = litellm.exceptions
    name = target.name
    chain = list(_causes(exc))
    if any(isinstance(c, TimeoutError | httpx.TimeoutException | failures.Timeout) for c in chain):
        return UpstreamTimeout(f"upstream {name} timed out")
    if any(isinstance(c, httpx.ConnectError) for c in chain):
        return UpstreamConnectError(f"cannot connect to upstream {name}")
    if any(isinstance(c, httpx.TransportError) for c in chain):
        return UpstreamDisconnected(f"upstream {name} broke the connection")
    if isinstance(exc, failures.MidStreamFallbackError) and exc.original_exception is not None:
        return map_error(litellm, exc.original_exception, target)
    message = _provider_message(exc, target.api_key)
    code: str | None = None
    retry_after: float | None = None
    if isinstance(exc, failures.ContextWindowExceededError):
        status, code = 400, "context_length_exceeded"
    elif isinstance(exc, failures.ContentPolicyViolationError):
        status, code = 400, "content_policy_violation"
    elif isinstance(exc, failures.RateLimitError):
        status, code, retry_after = 429, "rate_limit_exceeded", _retry_after_s(exc)
    elif isinstance(exc, failures.AuthenticationError):
        status = 401
    elif isinstance(exc, failures.PermissionDeniedError):
        status = 403
    elif isinstance(exc, failures.NotFoundError):
        status = 404
    elif isinstance(exc, failures.BadRequestError | failures.UnprocessableEntityError):
        status = exc.status_code if isinstance(exc.status_code, int) else 400
    elif isinstance(exc, failures.APIConnectionError):
        return UpstreamConnectError(f"upstream {name} failed: {message}")
    elif isinstance(exc, failures.APIResponseValidationError):
        return UpstreamProtocolError(f"upstream {name} answered an invalid response")
    elif isinstance(
        exc,
        failures.ServiceUnavailableError
        | failures.InternalServerError
        | failures.BadGatewayError
        | failures.APIError,
    ):
        status = _upstream_status(exc, exc.status_code if isinstance(exc.status_code, int) else 502)
    else:
        return UpstreamError(f"upstream {name} failed: {message}")
    return UpstreamStatusError(status, message, code=code, retry_after_s=retry_after)


# --- the provider -----------------------------------------------------------


class LiteLLMProvider:
    """Serves every target whose provider is ``litellm``; one per process.

    Construction is cheap and imports nothing. litellm is imported on the first
    call, or earlier by :meth:`warm_up` (the lifespan may start it in the
    background when a litellm target is configured).

    Timeouts come from the target: ``first_byte`` bounds the wait for the
    answer (non-streamed) or the first chunk, and the gap between chunks;
    ``total`` bounds the whole call or stream. Timeouts, connection failures,
    429 and 5xx are retryable on the next target (see
    :func:`gateway.errors.is_retryable`); other 4xx are the client's.
    """

    def __init__(self) -> None:
        self._litellm: Any = None
        self._failures: tuple[type[Exception], ...] = ()

    async def warm_up(self) -> None:
        """Import and configure litellm now, in a worker thread."""
        await self._library()

    async def _library(self) -> Any:
        if self._litellm is None:
            litellm = await asyncio.to_thread(load_litellm)
            self._failures = upstream_failures()
            self._litellm = litellm
        return self._litellm

    def _function(self, litellm: Any, endpoint: Endpoint) -> Any:
        if endpoint is Endpoint.CHAT:
            return litellm.acompletion
        if endpoint is Endpoint.COMPLETIONS:
            return litellm.atext_completion
        return litellm.aembedding

    async def complete(self, call: UpstreamCall) -> UpstreamReply:
        litellm = await self._library()
        function = self._function(litellm, call.endpoint)
        kwargs = build_kwargs(call, stream=False)
        try:
            async with asyncio.timeout(call.target.timeouts.total):
                response = await function(**kwargs)
        except self._failures as exc:
            raise map_error(litellm, exc, call.target) from exc
        return UpstreamReply(data=shape_response(call.endpoint, response.model_dump()))

    async def stream(self, call: UpstreamCall) -> AsyncIterator[list[bytes]]:
        if call.endpoint is Endpoint.EMBEDDINGS:
            raise InvalidRequest("embeddings cannot be streamed", param="stream")
        litellm = await self._library()
        function = self._function(litellm, call.endpoint)
        kwargs = build_kwargs(call, stream=True)
        shaper = StreamShaper(call.endpoint, include_usage=wants_usage(call.body))
        timeouts = call.target.timeouts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + timeouts.first_byte)):
                response = await function(**kwargs)
        except self._failures as exc:
            raise map_error(litellm, exc, call.target) from exc
        chunks = aiter(response)
        try:
            while True:
                try:
                    async with asyncio.timeout_at(min(deadline, loop.time() + timeouts.first_byte)):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except self._failures as exc:
                    raise map_error(litellm, exc, call.target) from exc
                batch = [orjson.dumps(payload) for payload in shaper.shape(chunk.model_dump())]
                if batch:
                    yield batch
        finally:
            await _close_stream(litellm, response)

    async def aclose(self) -> None:
        """Nothing to release: litellm owns its pooled HTTP clients, which
        live as long as the process."""


async def _close_stream(litellm: Any, response: Any) -> None:
    """Close litellm's stream, and with it the upstream connection."""
    if isinstance(response, litellm.CustomStreamWrapper):
        await response.aclose()
    else:
        # a text-completion stream wraps an async generator over a chat stream
        await response.completion_stream.aclose()
