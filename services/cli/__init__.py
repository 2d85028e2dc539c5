"""The ``stratus`` command: process entry points, ``stratus up`` and the user's client."""
