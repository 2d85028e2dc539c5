"""Stratus: the four processes (api, scheduler, compute, servicegroup), the library they share (core),
the CLI and the launcher."""
