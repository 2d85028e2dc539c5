"""Images as Glance does them: records and bytes (manager.py, files.py, upload.py), who sees what
(access.py), members (members.py), and the computes' internal ImageStore (store.py); gRPC handlers
in handlers.py."""
