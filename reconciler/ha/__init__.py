"""High availability and scale-out: leader election on a Lease, and sharding by a label.

- `lease`: the `LeaseStore` protocol (get / create / update with a resourceVersion) and the
  Lease record as client-go writes it (MicroTime timestamps, whole-second durations).
- `election`: `LeaderElector`, client-go's leaderelection semantics driven one step at a time
  from an injected clock, and `run_elector`, a loop for a thread.
- `gate`: `LeaderGatedBackend`, a `Backend` whose writes are refused unless this replica leads.
- `shard`: `ShardFilter`, which owners a replica reconciles (`sharding.fluxcd.io/key`), as a
  predicate and as the equivalent label selector for list and watch.

Implementations of `LeaseStore`: `KubernetesLeaseStore` in `reconciler.backends.kubernetes`
(`KubernetesBackend.leases()`), and `simulator.leases.InMemoryLeaseStore` over the in-memory
cluster (the simulator is never imported from here).

Losing leadership: exit, do not go standby. When `on_stopped_leading` fires (the renew deadline
passed, or another replica holds the Lease), the daemon closes its write gate at once and exits
non-zero; the kubelet restarts it, and it comes back as a standby with fresh state. Going
standby in-process would be possible but is less safe: reconciles already running in worker
threads would have to be interrupted mid-step (Python threads cannot be killed, and a
reconcile between two applies would leave a half-stamped chain that the new leader then
races), and every in-memory assumption made while leading (backoff and requeue timers, the
write counter, event counts, a Git fetch in progress) would survive into the next term. Exit
ends every writer at once; the new leader starts from the cluster. client-go's default
(`OnStoppedLeading: klog.Fatal`) and controller-runtime's make the same choice.
"""
