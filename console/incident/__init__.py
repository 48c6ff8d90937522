"""Incident: the guided five-step checklist, the timeline, fix validation, alert rules and the report.

An incident is a folder under the user's data directory (console/engine/paths.py)
holding its recording, checklist state, timeline, findings and report. The
checklist model (checklist.py), the timeline (timeline.py), the error-text
classifier (classify.py), the reproduce analysis (reproduce.py), the
before/after validation (validate.py), the alert rules (alerts.py) and the
report (report.py) are plain data and pure functions; folder.py reads and
writes the folder, session.py runs the automatic items through the hub, and
recording.py is the one place the incident's recording is opened.

May import: remote, diagnosis, engine, settings, probes/. Never ui or commands.
"""
