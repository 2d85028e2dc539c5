"""Who calls and what they may do: bearer tokens (auth.py, tokens.py), the method policy (policy.py,
policy.toml), and a user's SSH keypairs (keypairs.py, ssh_keys.py); gRPC handlers in handlers.py."""
