"""Server groups: where a project's servers land relative to each other (manager.py); gRPC handlers in
handlers.py."""
