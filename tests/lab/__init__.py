"""The test lab: network namespaces (netns.py, fixtures.py) and misbehaving servers (servers.py)."""
