"""Quotas: the per-project ledger charged in the same transaction as the records it counts (quota.py,
counted.py), and the Quotas API (sets.py); gRPC handlers in handlers.py."""
