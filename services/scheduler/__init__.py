"""The scheduler process: picks a host for each request with Nova-style filters and weighers, and
claims it in the same etcd transaction that places the server."""
