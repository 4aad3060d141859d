"""The web portal at `/ui/`: the workloads, deliverables and sources of a cluster, each owner's
path through its supply chain, events and Tekton logs, updated live over server-sent events.

`views` turns what a `Backend` holds into the JSON documents the page reads, `feed` turns the
backend's change notifications into a bounded event stream, `app` routes `/ui/...` requests
(static files, the JSON API, the stream, and the actions when they are switched on) without
owning a socket: the daemon's operations server and `reconciler serve` mount it on theirs.
"""
