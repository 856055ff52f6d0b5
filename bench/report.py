"""Ratios, target verdicts, the printed table and the JSON file.

Ratios are per-row time ratios: (sync s/row) / (baseline s/row). For baselines on the same
N that is just the wall-time ratio; it also makes the ORM baseline (smaller N) comparable.
Below 1 means the sync is faster. Ratios are per pairing (source-target kinds); a sync
killed at --timeout gets lower bounds (its wall time is the limit), printed with `>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import Result
from bench.runners import MM, MP, PAIRING_BASELINES, PM

Ratios = dict[str, dict[str, dict[str, float]]]  # pairing -> scenario -> baseline -> ratio


@dataclass(frozen=True)
class Target:
    """One goal from bench/README.md and whether this run met it."""

    name: str
    value: float | None
    limit: str
    passed: bool | None  # None: not measurable in this run


def ratios(results: list[Result]) -> Ratios:
    """Per pairing and scenario: sync per-row time divided by each baseline's per-row time."""
    found = {
        (r.pairing, r.scenario, r.runner): r
        for r in results
        if r.check != "FAILED" and (r.runner == "sync" or not r.timed_out)
    }
    out: Ratios = {}
    for (pairing, scenario, runner), sync in found.items():
        if runner != "sync":
            continue
        out.setdefault(pairing, {})[scenario] = {
            b: round(found[(pairing, scenario, b)].rows_per_s / sync.rows_per_s, 3)
            for b in PAIRING_BASELINES[pairing]
            if (pairing, scenario, b) in found
        }
    return out


def targets(results: list[Result], ratio: Ratios) -> list[Target]:
    """Evaluate the README targets that a single run can decide."""

    def r(scenario: str, baseline: str) -> float | None:
        return ratio.get(MM, {}).get(scenario, {}).get(baseline)

    results = [x for x in results if x.pairing == MM]

    def check(name: str, value: float | None, limit: str, ok: bool) -> Target:
        return Target(name, value, limit, None if value is None else ok)

    nochange = next((x for x in results if x.scenario == "nochange" and x.runner == "sync"), None)
    written = None if nochange is None else nochange.rows_written
    sync_peaks = [x.peak_mb for x in results if x.runner == "sync" and x.peak_mb is not None]
    peak = max(sync_peaks) if sync_peaks else None
    v = r("initial", "server")
    out = [check("initial load vs server INSERT..SELECT", v, "<= 3x", v is not None and v <= 3)]
    v = None if written is None else float(written)
    out.append(check("no-change rerun: students rows written", v, "== 0", v == 0))
    for b in ("server", "pt-table-sync"):
        v = r("nochange", b)
        out.append(check(f"no-change rerun vs {b}", v, "< 1x", v is not None and v < 1))
    v = r("change", "server")
    out.append(check("1% change vs server upsert", v, "<= 1.5x", v is not None and v <= 1.5))
    v = r("change", "pt-table-sync")
    out.append(check("1% change vs pt-table-sync", v, "<= 0.33x", v is not None and v <= 1 / 3))
    out.append(check("sync peak RSS (MB)", peak, "< 100", peak is not None and peak < 100))
    return out


def raised_targets(results: list[Result], ratio: Ratios) -> list[Target]:
    """Issue 11's targets, for every pairing in the run: same-kind ones raised, and the
    first ones across kinds (against the pipe floor and pgloader)."""

    def r(pairing: str, scenario: str, baseline: str) -> float | None:
        return ratio.get(pairing, {}).get(scenario, {}).get(baseline)

    def check(name: str, value: float | None, limit: float, strict: bool = False) -> Target:
        sign = "<" if strict else "<="
        ok = value is not None and (value < limit if strict else value <= limit)
        return Target(name, value, f"{sign} {limit:g}x", None if value is None else ok)

    pairings = sorted({x.pairing for x in results}, key=[MM, MP, PM].index)
    out: list[Target] = []
    for pairing in pairings:
        if pairing == MM:
            out += [
                check(f"{MM} initial vs server", r(MM, "initial", "server"), 2),
                check(f"{MM} no-change vs server", r(MM, "nochange", "server"), 0.5),
                check(f"{MM} no-change vs pt-table-sync", r(MM, "nochange", "pt-table-sync"), 0.6),
                check(f"{MM} 1% change vs server upsert", r(MM, "change", "server"), 1),
            ]
            continue
        out += [
            check(f"{pairing} initial vs floor", r(pairing, "initial", "floor"), 3),
            check(f"{pairing} no-change vs floor", r(pairing, "nochange", "floor"), 1),
            check(f"{pairing} 1% change vs floor", r(pairing, "change", "floor"), 1.5),
        ]
        if pairing == MP:
            v = r(MP, "initial", "pgloader")
            out.append(check(f"{MP} initial vs pgloader", v, 1, strict=True))
    peaks = [x.peak_mb for x in results if x.runner == "sync" and x.peak_mb is not None]
    peak = max(peaks) if peaks else None
    passed = None if peak is None else peak < 100
    out.append(Target("sync peak RSS, every pairing (MB)", peak, "< 100", passed))
    return out


def _fmt(value: float | int | None, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[Result], ratio: Ratios, pairing: str = MM) -> str:
    """Plain fixed-width table of one pairing: a line per (scenario, runner); ratios on sync
    lines. `>` marks a lower bound (the run was killed at --timeout)."""
    baselines = PAIRING_BASELINES[pairing]
    head = ["scenario", "runner", "rows", "wall s", "rows/s", "peak MB", "written", "state"]
    head += [f"x {b}" for b in baselines] + ["check"]
    lines = [head]
    for res in (r for r in results if r.pairing == pairing):
        rs = ratio.get(pairing, {}).get(res.scenario, {}) if res.runner == "sync" else {}
        bound = ">" if res.timed_out else ""
        lines.append(
            [res.scenario, res.runner, str(res.rows), f"{bound}{res.wall_s:.2f}",
             f"{'<' if bound else ''}{res.rows_per_s:,.0f}", _fmt(res.peak_mb, ".1f"),
             _fmt(res.rows_written), _fmt(res.state_rows_written)]
            + [bound + _fmt(rs.get(b), ".2f") if b in rs else "-" for b in baselines]
            + [res.check + (f" {res.note}" if res.note else "")]
        )  # fmt: skip
    widths = [max(len(row[i]) for row in lines) for i in range(len(head) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in lines
    )


def verdicts(found: list[Target]) -> str:
    """One line per target: PASS / FAIL / n/a."""
    marks = {True: "PASS", False: "FAIL", None: "n/a "}
    return "\n".join(
        f"{marks[t.passed]}  {t.name}: {_fmt(t.value, '.3g')} (target {t.limit})" for t in found
    )


def write_json(path: Path, meta: dict[str, Any], results: list[Result], ratio: Ratios,
               found: list[Target], raised: list[Target] | None = None) -> None:  # fmt: skip
    """Write the same figures as the table, machine-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": meta,
        "results": [r.to_json() for r in results],
        "ratios_vs_baselines": ratio,
        "targets": [t.__dict__ for t in found],
        "raised_targets": [t.__dict__ for t in raised or []],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
