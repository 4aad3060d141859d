"""The runtime base, below every controller: how a reconcile's ending steers what happens next
(`outcome`), rate limiting of retries (`ratelimit`) and the work queue (`workqueue`).

It imports nothing of the product above `reconciler.model`, so the controllers, the daemon and
the round-based runner of `simulate` all build on it.
"""
