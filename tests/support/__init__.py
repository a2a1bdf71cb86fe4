"""Helpers for tests that run real services: processes, the simulator's control API."""
