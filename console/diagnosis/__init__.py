"""Diagnosis: Finding, the rule registry, one module of rules per layer, the engine that runs them, the check verdict.

Rules are plain functions of the store; ``engine.FindingsEngine`` runs them at
a fixed rate beside the store and keeps when each finding appeared and cleared,
so every pane, the JSON stream and the report read one result.

May import: engine (the store), settings, probes/. Never remote, ui or commands.
"""
