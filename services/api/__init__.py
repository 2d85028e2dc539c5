"""The api process: the public gRPC API (stratus.v1) and the flows behind it. One package per
resource family (servers, flavors, server_groups, images, identity, quotas, admin), each with its
gRPC handlers in ``handlers.py``; flows/ runs the multi-step work. Shared by them: main.py (the
wiring), settings.py, handling.py, validation.py, paging.py, peers.py (calls to the other
processes), seeding.py and zones.py."""
