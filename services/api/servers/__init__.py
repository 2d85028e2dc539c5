"""The Servers API: validate, write the record, hand the work to flows/ (manager.py); ListServers
filters (list_filter.py) and list-then-watch (watch.py); gRPC handlers in handlers.py."""
