"""The libvirt virt driver's building blocks: domain XML, config drive, disks and the image cache;
its own settings (settings.py) and its plugin for the driver registry (plugin.py)."""
