"""Measurements that back decisions about how the service is run (see bench/README.md)."""
