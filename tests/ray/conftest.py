"""Fixtures of the Ray tests (the helpers live in ray_cluster, a unique module name)."""

from ray_cluster import ray_cluster  # noqa: F401  (a session fixture, registered by import)
