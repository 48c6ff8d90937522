"""The console: CLI, app, hub, store, recording, diagnosis, checklist and report."""

__version__ = "0.1.0"
