"""Local leases of shared quota: admitting a request without a round trip.

A rate limit or a budget shared by many replicas is counted in one place
(Redis; or memory, for a single process). Asking that place about every
request would put a round trip on every request's path. Instead each replica
holds a *lease* per scope: units the shared count has already counted for
this replica, which it hands out locally.

Contract, for rate limits and budgets alike:

* **A limit is never passed.** Every unit a replica hands out was counted in
  the shared state first, atomically, by the same script that checks the
  limit (:meth:`RateLimiter.lease`, :meth:`SpendLedger.reserve`).
* **Leases follow demand.** A request that finds its lease short is counted by
  itself (one round trip, as without leases) and asks for about ``lease_s``
  seconds of this replica's own recent traffic in that scope on top. A scope
  with less than about one request per ``lease_s`` on this replica holds no
  lease: each of its requests is counted by itself.
* **Leases shrink near a limit.** A lease is at most
  :data:`~gateway.state.window.LEASE_SHARE` of what is left under the limit,
  so with fewer than ``1 / LEASE_SHARE`` units left every request is counted
  by itself, exactly.
* **Leases are topped up ahead of need**, in the background, once half of the
  last grant is handed out; a budget lease also when it is older than
  ``lease_s``, so that a budget another replica exhausted is noticed within
  about ``lease_s``.
* **Unused units go back**: :meth:`flush` gives back what a lease holds once
  it was not used for ``lease_s``, or once its rate window ended.

The price, in fairness: while one replica holds unused units, a request on
another may be refused before the limit is reached — by at most the lease
share of what was left when each lease was taken, for at most about
``2 * lease_s``. ``lease_s = 0`` turns leases off: every request is counted by
itself.
"""

from gateway.quota.leases.budgets import BudgetLeases
from gateway.quota.leases.rates import RateLeases

__all__ = ["BudgetLeases", "RateLeases"]
