"""Quota: who may spend what.

Owns API-key authentication and the key admin commands, rate limits, concurrent
stream limits and budgets (admitted from local leases of the shared counts), spend
from actual usage, and the one batch writer that sends spend, token corrections and
lease give-backs to the state store.

May import: upstream's plain types (usage), observability, policy, judging, state and
the core modules.
"""
