"""``report.json``: the one schema, written by the host pipeline and by ``edgedl-run bench`` on a device,
validated whenever it is read (``select``, ``report``, ``bundle``).

Schema 2 (schema 1 files still read: every variant was measured then)::

    {"schema_version": 2, "kind": "edgedl-report", "model": str, "task": str,
     "metric": str | null,                  # what variants are ranked by; null when nothing was scored
     "machine": {"cpu": str, "threads": int, ...},
     "variants": [{"name": str, "format": str, "precision": str, "techniques": [str],
                   "status": "ok" | "failed", "error": str,         # the one-line reason, when failed
                   "metrics": {str: float}, "metric_delta": float | null,
                   "latency_ms": {"p50": float, ...}, "size_bytes": int, ...}],
     "devices": {name: {"machine": {...}, "variants": [...], ...}}}   # optional: see runtime.devices
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Optional

from .errors import UserError
from .tasks import TASKS

SCHEMA_VERSION = 2
KIND = "edgedl-report"
MAX_REPORT_BYTES = 64 << 20
DEVICES = "devices"  # the rows measured on boards (runtime.devices)


def primary_metric(task: str) -> Optional[str]:
    """The metric a report ranks variants by (the task's: accuracy for classifiers, PSNR for denoisers), or
    None for a task without one and for a task this runtime does not know."""
    return TASKS[task].metric if task in TASKS else None


def fidelity_metric(variants: list[dict]) -> Optional[str]:
    """What ranks the variants of a model nothing scores (no labels, no targets) by their fidelity to the
    original: top-1 agreement where the output is a score vector; otherwise the share of output channels
    that kept their own range (``metrics.channel_fidelity``: one number over a whole tensor is its
    large-range part's); cosine similarity for reports measured before it."""
    first = next((v for v in variants if is_ok(v)), {})
    return next((m for m in ("top1_agreement", "channels_ok", "cosine") if m in first.get("metrics", {})), None)


# Fractions (accuracy, agreement with the original, cosine similarity) differ in points; the rest in dB.
IN_POINTS = ("accuracy", "top1_agreement", "channels_ok", "cosine", "miou", "pixel_accuracy", "map50", "map", "roc_auc",
             "tar_far1")


def metric_delta(value: float, reference: float, metric: str) -> float:
    """Variant minus reference: accuracy (and the fidelity fractions) in points, PSNR and SNR in dB."""
    return (value - reference) * (100.0 if metric in IN_POINTS else 1.0)


def unit(metric: Optional[str]) -> str:
    return "points" if metric in IN_POINTS else "dB" if metric in ("psnr", "snr_db") else ""


def variant_record(name: str, fmt: str, precision: str, techniques, file, shown: str, figures: dict,
                   costs: Optional[dict] = None) -> dict:  # fmt: skip
    """A measured variant: what it is, where (``shown``: its path as the report stores it), the size of its
    ``file`` raw and gzipped, its ``costs`` (params, MACs, sparsity, ...) and the measurement's ``figures``
    (metrics, latency, memory)."""
    from .files import file_sizes

    size, gz = file_sizes(Path(file))
    return {"name": name, "format": fmt, "precision": precision, "techniques": list(techniques), "path": shown,
            "size_bytes": size, "gzip_bytes": gz, **(costs or {}), **figures}


# A quantized artifact's notes name its layers' quantization error, one note a layer (worst first), in this
# form: written by the exporters, read back into the report's ``layers`` (``layer_rows``).
_LAYER = re.compile(r"^int8 layer: (?P<node>.+) \((?P<op>[^()]+)\): (?P<own>-?[0-9.]+) dB its own quantization"
                    r"(, (?P<psnr>-?[0-9.]+) dB after it)?(?P<kept>; kept in float)?$")


def layer_note(node: str, op: str, own_db: float, psnr_db: Optional[float] = None, kept: bool = False) -> str:
    """One layer's quantization error as an artifact's note: the PSNR of its output's own quantization
    (``own_db``) and, where measured, of its output against float (``psnr_db``, every layer up to it)."""
    after = "" if psnr_db is None else f", {psnr_db:.1f} dB after it"
    return f"int8 layer: {node} ({op}): {own_db:.1f} dB its own quantization{after}" + "; kept in float" * kept


def layer_rows(notes) -> list:
    """The layers named by ``layer_note`` notes, in their order: node, op, own_db, psnr_db (None where not
    measured), kept_float."""
    rows = []
    for note in notes or ():
        found = _LAYER.match(str(note))
        if found:
            rows.append({"node": found["node"], "op": found["op"], "own_db": float(found["own"]),
                         "psnr_db": None if found["psnr"] is None else float(found["psnr"]),
                         "kept_float": bool(found["kept"])})  # fmt: skip
    return rows


def failed_record(name: str, fmt: str, precision: str, techniques: tuple, error: str) -> dict:
    """A variant that could not be built or measured: kept in the report with its reason."""
    return {"name": name, "format": fmt, "precision": precision, "techniques": list(techniques),
            "status": "failed", "error": error, "metrics": {}, "metric_delta": None}  # fmt: skip


def is_ok(variant: dict) -> bool:
    return variant.get("status", "ok") == "ok"


def nothing_built(report: dict) -> Optional[str]:
    """Why a run gave nothing to deploy (it had variants to build, and every one failed), naming each with its
    reason; None when a variant was built."""
    variants = [v for v in report["variants"] if v["format"] != "keras" and v.get("name") != "original"]
    if not variants or any(is_ok(v) for v in variants):
        return None
    reasons = "; ".join(f"{v['name']}: {v.get('error', 'failed')}" for v in variants[:3])
    more = f" (and {len(variants) - 3} more)" if len(variants) > 3 else ""
    return f"every variant failed to build or run: {reasons}{more}"


def with_deltas(variants: list[dict], metric: Optional[str]) -> list[dict]:
    """``metric_delta`` (variant minus the original, the Keras model or else the first measured variant)."""
    measured = [v for v in variants if is_ok(v) and metric in v.get("metrics", {})]
    original = next((v for v in measured if v["format"] == "keras"), measured[0] if measured else None)
    out = []
    for v in variants:
        delta = None
        if original is not None and v in measured:
            delta = metric_delta(v["metrics"][metric], original["metrics"][metric], metric)
        out.append({**v, "status": v.get("status", "ok"), "metric_delta": delta})
    return out


def with_speed(variants: list[dict]) -> list[dict]:
    """``speed_vs_float32``: how many times faster than the same format's float32 variant (p50 at batch 1,
    measured in the same run): below 1, the variant is slower than the float model it was made to beat
    (dynamic-range convolutions are, on MobileNetV2 here), and the report says so."""
    floats = {v["format"]: v for v in variants if is_ok(v) and v.get("precision") == "float32"
              and not v.get("techniques") and v["format"] != "keras" and v.get("latency_ms")}  # fmt: skip
    out = []
    for v in variants:
        base = floats.get(v.get("format"))
        if base is not None and v is not base and is_ok(v) and v.get("latency_ms", {}).get("p50"):
            v = {**v, "speed_vs_float32": round(base["latency_ms"]["p50"] / v["latency_ms"]["p50"], 3)}
        out.append(v)
    return out


def make_report(model: str, task: str, variants: list[dict], machine: dict, extra: Optional[dict] = None,
                metric: Optional[str] = None) -> dict:  # fmt: skip
    """The report; ``metric`` (default: the task's, else the variants' fidelity) is what they are ranked by."""
    metric = metric or primary_metric(task) or fidelity_metric(variants)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "model": model,
        "task": task,
        "metric": metric,
        "machine": machine,
        **(extra or {}),
        "variants": with_speed(with_deltas(variants, metric)),
    }


def _bad(source, what: str) -> UserError:
    return UserError(f"{source}: not an edgedl report ({what}); give a report.json written by 'edgedl pipeline' "
                     "or 'edgedl-run bench --json'")  # fmt: skip


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def validate_report(doc, source="report") -> dict:
    """The report, checked field by field (schema 1 upgraded to 2); one line naming the first problem."""
    if not isinstance(doc, dict):
        raise _bad(source, "not a JSON object")
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _bad(source, "no schema_version")
    if version > SCHEMA_VERSION:
        raise UserError(f"{source}: report schema_version {version} is newer than this edgedl's {SCHEMA_VERSION}; "
                        "upgrade edgedl")  # fmt: skip
    for key in ("model", "task"):
        if not isinstance(doc.get(key), str):
            raise _bad(source, f"no {key}")
    if doc.get("metric") is not None and not isinstance(doc.get("metric"), str):
        raise _bad(source, "metric is not a name")
    machine = doc.get("machine")
    if not isinstance(machine, dict) or not isinstance(machine.get("cpu", ""), str):
        raise _bad(source, "no machine")
    variants = doc.get("variants")
    if not isinstance(variants, list) or not variants:
        raise _bad(source, "no variants")
    names = set()
    for i, v in enumerate(variants):
        where = f"variant {i + 1}"
        if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not v["name"]:
            raise _bad(source, f"{where} has no name")
        where = f"variant {v['name']!r}"
        if v["name"] in names:
            raise _bad(source, f"{where} appears twice")
        names.add(v["name"])
        for key in ("format", "precision"):
            if not isinstance(v.get(key), str):
                raise _bad(source, f"{where} has no {key}")
        status = v.setdefault("status", "ok")
        if status not in ("ok", "failed"):
            raise _bad(source, f"{where} has status {status!r}")
        metrics = v.setdefault("metrics", {})
        if not isinstance(metrics, dict) or not all(isinstance(k, str) and (_number(x) or x is None)
                                                    for k, x in metrics.items()):  # fmt: skip
            raise _bad(source, f"{where} has unreadable metrics")
        delta = v.setdefault("metric_delta", None)
        if delta is not None and not _number(delta):
            raise _bad(source, f"{where} has an unreadable metric_delta")
        if status == "failed":
            if not isinstance(v.get("error"), str):
                raise _bad(source, f"{where} failed without a reason")
            continue
        lat = v.get("latency_ms")
        if not isinstance(lat, dict) or not all(_number(lat.get(k)) and lat[k] >= 0 for k in ("p50", "p90", "p99")):
            raise _bad(source, f"{where} has no latency")
        if not isinstance(v.get("size_bytes"), int) or v["size_bytes"] < 0:
            raise _bad(source, f"{where} has no size_bytes")
    doc["schema_version"] = SCHEMA_VERSION
    doc.setdefault("kind", KIND)
    _validate_devices(doc, source)
    return doc


def _validate_devices(doc: dict, source) -> None:
    """The ``devices`` section of ``doc`` (when there is one), each entry a readable report of its own."""
    devices = doc.get(DEVICES)
    if devices is None:
        return
    if not isinstance(devices, dict):
        raise UserError(f"{source}: not an edgedl report (its devices are not a table by name)")
    for name, entry in devices.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("machine"), dict):
            raise UserError(f"{source}: not an edgedl report (device {name!r} has no machine)")
        view = {k: doc[k] for k in ("schema_version", "model", "task", "metric") if k in doc}
        validate_report({**view, "machine": entry["machine"], "variants": entry.get("variants")},
                        f"{source} (device {name!r})")  # fmt: skip


def read_report(path) -> dict:
    """``report.json`` read and validated."""
    from .files import read_limited

    data = read_limited(path, MAX_REPORT_BYTES, "report")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise _bad(path, "not JSON") from None
    return validate_report(doc, Path(path))
