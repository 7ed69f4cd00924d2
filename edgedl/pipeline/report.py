"""The last stage of a run, its own or another tool's model alike: the report merged with a previous run's
variants, written once (``report.json``), rendered from memory, shown, and a run that built nothing said so."""
from __future__ import annotations

from pathlib import Path

from benchmarks import print_table, write_report
from benchmarks.render import render_reports
from runtime.errors import UserError
from runtime.report import is_ok, nothing_built, read_report
from runtime.runfolder import REPORT_FILE


def merged_with_previous(records: list, out: Path, model: str, task: str, fingerprint: str, log) -> list:
    """A re-run of some variants into the same folder keeps the others' records (same model and data)."""
    previous_path = out / REPORT_FILE
    if not previous_path.exists():
        return records
    try:
        previous = read_report(previous_path)
    except UserError:
        return records
    if (previous["model"], previous["task"], (previous.get("data") or {}).get("fingerprint")) != (model, task,
                                                                                                 fingerprint):
        return records
    ran = {r["name"] for r in records}
    fresh = {r["name"]: r for r in records}
    kept = [v["name"] for v in previous["variants"] if v["name"] not in ran]
    if kept:
        log(f"report: keeping {len(kept)} variants of the previous run ({', '.join(kept)})")
    merged = [fresh.pop(v["name"], None) or {k: x for k, x in v.items() if k != "metric_delta"}
              for v in previous["variants"]]  # the previous order, this run's records in place
    return merged + list(fresh.values())


def with_device_rows_kept(report: dict, out: Path) -> dict:
    """The rows boards measured ('edgedl deploy') of the previous report.json, those of artifacts that are still
    the same bytes (``artifact_sha256``): a re-run does not throw a board's figures away, nor keep stale ones."""
    from runtime.devices import KEY
    from runtime.files import sha256_file
    from runtime.runfolder import resolve

    try:
        previous = read_report(out / REPORT_FILE) if (out / REPORT_FILE).exists() else {}
    except UserError:
        return report
    if previous.get("model") != report["model"] or not previous.get(KEY):
        return report
    names = {v["name"]: v for v in report["variants"] if is_ok(v) and v.get("path")}

    def same(row) -> bool:
        host = names.get(row["name"])
        path = resolve(host["path"], out) if host else None
        return path is not None and path.is_file() and sha256_file(path) == row.get("artifact_sha256")

    kept = {}
    for device, entry in previous[KEY].items():
        rows = [r for r in entry.get("variants", []) if same(r)]
        if rows:
            kept[device] = {**entry, "variants": rows}
    return {**report, KEY: kept} if kept else report


def publish(report: dict, out: Path, terminal, what: str) -> dict:
    """Write ``report`` once into the run folder ``out``, render it, show its table; a run whose every variant
    failed is a ``UserError`` (the report says why each did) after all that."""
    report = with_device_rows_kept(report, out)
    write_report(out / REPORT_FILE, report)
    bad = [r for r in report["variants"] if not is_ok(r)]
    if bad:
        terminal.note(f"[yellow]{len(bad)} of {len(report['variants'])} variants failed[/] "
                      f"({', '.join(r['name'] for r in bad)}): their reasons are in the report")  # fmt: skip
    terminal.steps.begin("report")
    written = render_reports([report], [out], out / "report")
    terminal.steps.finish()
    print_table(report, terminal.out)
    terminal.say(f"report: {out / REPORT_FILE}, {written['html']}")
    failed_all = nothing_built(report)
    if failed_all:  # the report says what failed; the exit code says nothing came of the run
        raise UserError(f"{what}: {failed_all}")
    return report
