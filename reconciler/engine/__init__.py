"""The reconcile loop: ordered steps, context, scheduling."""
