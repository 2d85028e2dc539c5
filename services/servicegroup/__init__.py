"""The servicegroup process: which services are alive, from their etcd leases, and the operator's
service state (disabled, forced down)."""
