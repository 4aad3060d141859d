"""Flux's `notification.toolkit.fluxcd.io/v1` `Receiver`: webhooks that request reconciles.

- `receiver`: the spec as the product reads it, and `webhook_path` as Flux computes it.
- `token`: the token from the Secret named by `spec.secretRef` (key `token`).
- `verify`: checking a request per type (`github`, `gitlab`, `generic`, `generic-hmac`).
- `targets`: the objects a Receiver's `spec.resources` select (names, `*` with matchLabels,
  Flux's cross-namespace rule).
- `requests`: setting `reconcile.fluxcd.io/requestedAt` on them (server-side apply of that one
  annotation under its own field manager).
- `controller`: the Receiver controller (token, `status.webhookPath`, Ready).
- `server`: the HTTP server for `POST /hook/<sha256>`; `metrics`: its request counter.
"""
