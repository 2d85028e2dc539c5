"""The fake virt driver, as Nova's: the driver (driver.py), its domains and their file (domains.py),
the host size it pretends to have (host.py), its own settings (settings.py) and its plugin for the
driver registry (plugin.py)."""
