"""The engine: the hub that runs probes, the bounded store, recording, the probe plan, stats, the demo's servers.

May import: settings, probes/. Never diagnosis, remote, ui or commands
(the findings loop lives in console/diagnosis so that rules may read the store).
"""
