"""The test lab: misbehaving servers (servers.py) and, later, network namespaces (netns.py)."""
