"""The Sample contract: one measurement, as it travels from a probe to the screen.

A Sample is what every probe yields, what the SSH agent prints (one JSON object
per line), what a recording stores and what widgets and diagnosis read. Keep it
plain and JSON-safe so that all of those carry it unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Union

#: Bumped when a field is renamed or its meaning changes, or the encoding of snapshot changes
#: (probes/snapshot_delta.py) does; the agent handshake and recordings carry it so a mismatch is
#: reported instead of misread. 2: runs of unchanged rows ({"k": [i, n]}), which a schema-1 reader
#: would count as bad lines; it now refuses the recording in one line instead.
SCHEMA_VERSION = 2

#: The host name local probes report; remote samples carry the SSH host's name.
LOCAL_HOST = "local"

JSONValue = Union[None, bool, int, float, str, list["JSONValue"], dict[str, "JSONValue"]]  # noqa: UP007 - recursive alias needs Union at runtime

#: Failure kinds shared by every probe, so the UI and diagnosis can group them.
#: Probes may add their own (for example "nxdomain" or "cert-expired").
ERROR_TIMEOUT = "timeout"
ERROR_REFUSED = "refused"
ERROR_UNREACHABLE = "unreachable"
ERROR_RESET = "reset"
ERROR_EXCEPTION = "exception"


class SampleDecodeError(ValueError):
    """A line that is not a valid Sample (bad JSON, wrong types, missing keys)."""


@dataclass(frozen=True, slots=True)  # slots: a store holds ~100k of them
class Sample:
    """One measurement by one probe of one target, seen from one host.

    A failed measurement is still a Sample: ``error`` names the failure kind
    and ``message`` keeps the original error text, so evidence is never
    rewritten on its way to the screen.
    """

    kind: str
    """The probe that made it and so the layer it speaks for: "tcp", "dns", "system" ..."""
    target: str
    """What was measured, as the user wrote it ("127.0.0.1:5432"); "" for host-wide probes."""
    ts: float
    """Wall-clock seconds since the epoch when the measurement finished."""
    fields: dict[str, JSONValue] = field(default_factory=dict)
    """The measured values; JSON types only (no tuples, no NaN)."""
    host: str = LOCAL_HOST
    """The vantage point: "local" or the SSH host the probe ran on."""
    error: str | None = None
    """Failure kind ("timeout", "refused", ...) or None when the measurement worked."""
    message: str | None = None
    """The original error text, unedited, when ``error`` is set."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def series(self) -> tuple[str, str, str]:
        """The key of the time series this sample belongs to."""
        return (self.host, self.kind, self.target)

    def to_dict(self) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {
            "kind": self.kind,
            "host": self.host,
            "target": self.target,
            "ts": self.ts,
            "fields": self.fields,
        }
        if self.error is not None:
            out["error"] = self.error
            out["message"] = self.message
        return out

    def to_json(self) -> str:
        """One line of JSON; raises ValueError for values JSON cannot carry exactly."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> Sample:
        if not isinstance(data, dict):
            raise SampleDecodeError(f"expected a JSON object, got {type(data).__name__}")
        try:
            kind, target, ts = data["kind"], data["target"], data["ts"]
        except KeyError as missing:
            raise SampleDecodeError(f"missing key {missing.args[0]!r}") from None
        host = data.get("host", LOCAL_HOST)
        fields = data.get("fields", {})
        error = data.get("error")
        message = data.get("message")
        if not isinstance(kind, str) or not isinstance(target, str) or not isinstance(host, str):
            raise SampleDecodeError("kind, target and host must be strings")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise SampleDecodeError("ts must be a number")
        if not isinstance(fields, dict):
            raise SampleDecodeError("fields must be an object")
        if error is not None and not isinstance(error, str):
            raise SampleDecodeError("error must be a string or null")
        if message is not None and not isinstance(message, str):
            raise SampleDecodeError("message must be a string or null")
        return cls(kind=kind, target=target, ts=ts, fields=fields, host=host, error=error, message=message)

    @classmethod
    def from_json(cls, line: str | bytes) -> Sample:
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SampleDecodeError(f"not JSON: {exc}") from None
        return cls.from_dict(data)


def error_sample(kind: str, target: str, error: str, message: str, *, host: str = LOCAL_HOST,
                 fields: dict[str, JSONValue] | None = None) -> Sample:
    """A Sample that records a failed measurement, keeping the original message."""
    return Sample(kind=kind, target=target, ts=time.time(), fields=fields or {}, host=host,
                  error=error, message=message)
