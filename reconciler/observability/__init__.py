"""Logs, metrics, status/events and health endpoints."""
