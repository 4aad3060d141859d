"""Applying desired objects to the cluster: create or update, inventory, prune, health."""
