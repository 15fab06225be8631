"""Hybrid LLM routing gateway: an OpenAI-compatible proxy that routes each request
to self-hosted or proprietary models by sensitivity, task, cost and budget."""

__version__ = "0.1.0"
