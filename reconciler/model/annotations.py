"""Annotation names the reconciler reads and writes on users' objects, in one place.

Plain strings only: imported by the CLI, the portal, the sources and the engines alike, so this
module imports nothing.
"""

SUSPEND_ANNOTATION = "reconciler.dev/suspend"
"""`"true"` suspends a Workload or Deliverable (Cartographer's kinds have no `spec.suspend`): not
reconciled, its status left as it was, until the annotation goes or says otherwise."""

REQUESTED_AT_ANNOTATION = "reconcile.fluxcd.io/requestedAt"
"""Flux's reconcile request: a new value asks for a reconcile now; an owner records the value it
handled in `status.lastHandledReconcileAt`."""
