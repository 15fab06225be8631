"""The edge: HTTP in, HTTP out.

Owns the OpenAI lane (the hot ``POST /v1/*`` endpoints as pure ASGI, in front of
FastAPI), the thin routes for everything else, reading bodies within their limit,
the one error renderer, and the uvicorn protocol that writes a response's head with
its first body bytes. Routes read the request, call one function of the services
and render its answer; no business logic lives here.

May import: services and everything below it (pipeline, stages, state, core).
"""
