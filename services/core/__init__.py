"""The library every Stratus process shares: etcd access and keys, records and states, errors,
settings, the gRPC runner, channels, TLS and telemetry. It imports no process package."""
