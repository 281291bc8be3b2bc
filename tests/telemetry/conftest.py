"""Fixtures of the telemetry tests (the helpers live in telemetry_support, a unique module name)."""

from telemetry_support import start_stand_in  # noqa: F401  (a fixture, registered by import)
