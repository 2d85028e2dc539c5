"""The virt drivers a compute can run: the interface (base.py), what a driver plugin declares
(plugin.py), one package per driver with its own settings and plugin (fake/, libvirt/), and the
registry of them by the name ``--driver`` takes (registry.py). Import each name from its module."""
