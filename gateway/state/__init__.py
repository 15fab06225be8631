"""State: cache, keys, limits, spend, each with an in-memory and a Redis implementation.

Owns the interfaces (:mod:`gateway.state.base`), the two backends (Redis single node
or Cluster through redis-py, the only redis import; in memory for one process), the
ledger arithmetic both share, the key-value names both use, and the per-replica
near-cache in front of the Redis response cache.

May import: only the core modules.
"""
