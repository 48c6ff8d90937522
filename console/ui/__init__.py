"""The screen: the Textual App, its modal screens and the pane actions (no I/O of its own).

``create_app`` is the one factory the commands and the tests call.

May import: remote, diagnosis, engine, settings, widgets/, themes/, probes/. Never commands.
"""
