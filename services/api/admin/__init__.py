"""Admin families: services and hosts (hosts.py), aggregates, placement (ExplainPlacement) and the
claims audit; their gRPC handlers in handlers.py."""
