"""Ray cluster and Ray Serve state from the dashboard's REST API, and what it can and cannot schedule."""
