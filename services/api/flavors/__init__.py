"""Flavors: sizes a server is created with, names unique (manager.py); gRPC handlers in handlers.py."""
