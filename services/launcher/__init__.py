"""``stratus up``: a whole stack on one machine, with a local etcd, supervised until Ctrl-C."""
