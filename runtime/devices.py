"""The rows a run's variants earned on a device (``edgedl deploy``), kept in the run's ``report.json``.

The ``devices`` section, one entry per device, by the name the user reached it with::

    "devices": {"pi5": {"target": "rpi-arm64", "measured": "2026-12-06T18:00:00Z",
                        "machine": {...},          # the board's, as 'edgedl-run bench' records it
                        "variants": [...]}}        # variant records as the board measured them, each with
                                                   # its "artifact_sha256" (what was measured) and the host's
                                                   # "path" (where the artifact is in the run)

``device_view`` turns one entry into a report of its own (the run's model, task
and metric, the device's machine and rows), which ``select``, ``bundle`` and the
report pages take as they take the host's.
"""
from __future__ import annotations

from typing import Optional

from .errors import UserError
from .report import DEVICES as KEY
from .report import with_speed


def device_names(report: dict) -> list:
    return list((report.get(KEY) or {}).keys())


def device_view(report: dict, name: str) -> dict:
    """The run as measured on device ``name``: a report whose machine and variants are the device's."""
    devices = report.get(KEY) or {}
    if name not in devices:
        known = ", ".join(devices) or "none yet"
        raise UserError(f"no figures measured on {name!r} in this run (measured on: {known}); measure them with "
                        f"'edgedl deploy RUN --host {name} --target TARGET'")  # fmt: skip
    entry = devices[name]
    view = {k: v for k, v in report.items() if k not in (KEY, "variants", "machine")}
    return {**view, "machine": {**entry["machine"], "device": name}, "variants": entry["variants"],
            "measured_on": name, "target": entry.get("target")}  # fmt: skip


def device_views(report: dict) -> list:
    return [device_view(report, name) for name in device_names(report)]


def measured(report: dict, name: str) -> dict:
    """The rows already measured on device ``name`` that succeeded, by the sha256 of the artifact measured."""
    entry = (report.get(KEY) or {}).get(name) or {}
    return {v["artifact_sha256"]: v for v in entry.get("variants", [])
            if v.get("status", "ok") == "ok" and v.get("artifact_sha256")}  # fmt: skip


def with_device_rows(report: dict, name: str, target: str, machine: Optional[dict], rows: list, when: str) -> dict:
    """``report`` with ``rows`` measured on device ``name`` merged in: a variant measured again replaces its
    earlier row; the other rows stay."""
    devices = dict(report.get(KEY) or {})
    entry = devices.get(name) or {}
    fresh = {r["name"] for r in rows}
    kept = [v for v in entry.get("variants", []) if v["name"] not in fresh]
    order = {v["name"]: i for i, v in enumerate(report["variants"])}
    variants = with_speed(sorted(kept + rows, key=lambda v: order.get(v["name"], len(order))))
    devices[name] = {"target": target, "measured": when, "machine": machine or entry.get("machine", {}),
                     "variants": variants}  # fmt: skip
    return {**report, KEY: devices}
