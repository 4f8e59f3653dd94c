"""``audiosym presets list | inspect P``: the shipped and user presets, and what one holds."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from audiosym import families
from audiosym.cli._common import print_json
from audiosym.dsp.pitch import midi_name
from audiosym.errors import PresetError
from audiosym.preset.format import (
    preset_files,
    read_metadata,
    resolve_preset,
    shipped_dir,
    user_dir,
)

HELP = """\
A preset is one .asym file: a trained model (its ONNX graphs), how MIDI notes map onto it, and
its named timbres (instruments it can sound like). Presets are found by name in the shipped
presets/ folder and in your user folder ($AUDIOSYM_PRESETS, default
~/.local/share/audiosym/presets: copy a .asym file there to use it by name); any path works too.

  list              every findable preset: name, kind (SPS or V3), timbres, size, where
  inspect PRESET    what it holds: kind, pitch control, playable range (the MIDI notes it was
                    trained on), timbres, latency, model sizes, metrics (--json: all of it)

Words (SPS, V3, latency, codebook atoms, z_pitch): docs/musicians.md.
"""

EXAMPLES = """\
examples:
  audiosym presets list
  audiosym presets inspect sps-default               # playable range, timbres, latency
  audiosym presets inspect v3-default --json
"""

LIST_EXAMPLES = """\
examples:
  audiosym presets list
  audiosym presets list --json
"""

INSPECT_EXAMPLES = """\
examples:
  audiosym presets inspect sps-default                # by name: shipped or in your user folder
  audiosym presets inspect ./my-sps.asym --json       # by path; all the metadata as JSON
  audiosym presets inspect v3-default | head -20
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list or inspect presets", description=HELP, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pl = ps.add_parser("list", help="list shipped and user presets", description="List every preset findable by "
                       "name (shipped and in your user folder), and both folders.", epilog=LIST_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    pl.add_argument("--json", action="store_true", help="print the list as one JSON object on stdout")
    pl.set_defaults(func=run_list)
    pi = ps.add_parser("inspect", help="show what a preset holds", description="What a preset holds: kind, "
                       "pitch control, playable range, timbres (* = default), latency, sizes, metrics.",
                       epilog=INSPECT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    pi.add_argument("preset", help="preset file path or name")
    pi.add_argument("--json", action="store_true", help="print the full metadata as JSON")
    pi.set_defaults(func=run_inspect)


def run_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name, path, where in preset_files():
        row: dict[str, Any] = {"name": name, "where": where, "path": str(path), "bytes": path.stat().st_size}
        try:
            meta = read_metadata(path)
            row.update(kind=meta["kind"], timbres=len(meta["timbres"]), error=None)
        except PresetError as exc:
            row.update(kind="?", timbres=0, error=str(exc))
        rows.append(row)
    if args.json:
        print_json({"shipped_dir": str(shipped_dir()), "user_dir": str(user_dir()), "presets": rows})
        return 0
    print(f"shipped: {shipped_dir() or '(none)'}\nuser:    {user_dir()}\n")
    if not rows:
        print("no presets found")
        return 0
    print(f"{'name':<24} {'kind':<5} {'timbres':>7} {'size':>9}  where")
    for r in rows:
        print(f"{r['name']:<24} {r['kind']:<5} {r['timbres']:>7} {r['bytes'] / 1e6:>7.2f}MB  {r['where']}")
        if r["error"]:
            print(f"    unreadable: {r['error']}")
    return 0


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        elif isinstance(v, int | float | str | bool):
            out.append((f"{prefix}{k}", v))
    return out


def run_inspect(args: argparse.Namespace) -> int:
    path = resolve_preset(args.preset)
    meta = read_metadata(path)
    if args.json:
        print_json({"path": str(path), "bytes": path.stat().st_size, **meta})
        return 0
    f = meta["features"]
    sr = f["sample_rate"]
    pitch_lines = families.get(meta["kind"]).describe_pitch_control(meta)
    lo, hi = meta["midi_range"]
    rows = [
        ("preset", f"{meta['name']}  ({path}, {path.stat().st_size / 1e6:.2f} MB)"),
        ("kind", meta["kind"]),
        ("created", f"{meta['created']}  (format {meta['format_version']}, audiosym {meta['versions'].get('audiosym', '?')})"),
        ("pitch control", pitch_lines[0]),
        *[("", line) for line in pitch_lines[1:]],
        ("playable range", f"{midi_name(lo)} .. {midi_name(hi)}  (MIDI {lo} .. {hi})"),
        ("timbres", f"{len(meta['timbres'])}, default {meta['default_timbre']}"),
        ("latency", f"{meta['latency_samples']} samples = {1e3 * meta['latency_samples'] / sr:.1f} ms at {sr} Hz "
                    f"(analysis look-behind; context {meta['context_frames']} frames)"),
        ("features", f"{sr} Hz, n_fft {f['n_fft']}, hop {f['hop_length']}, {f['n_bins']} log-frequency bins, {meta['window']}"),
        ("trained on", meta["train_soundfont"]),
        ("trained by", (meta.get("source") or {}).get("train_command", "unknown")),
    ]
    rows += [(f"graph {g}", f"{v['bytes'] / 1e3:.0f} kB  sha256 {v['sha256'][:16]}…") for g, v in meta["graphs"].items()]
    match = meta.get("match")
    rows.append(("match data", (f"{match['member']} {match['bytes'] / 1e3:.0f} kB: corrections and note envelopes of "
                                f"{len(match['timbres'])} timbres, measured on {match['soundfont']}") if match
                 else "none (re-export to add: audiosym export RUN --out P.asym)"))
    if meta.get("description"):
        rows.insert(1, ("description", meta["description"]))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("\ntimbres:")
    for name, t in sorted(meta["timbres"].items()):
        mark = "*" if name == meta["default_timbre"] else " "
        seen = "" if t.get("trained", True) else "  (not trained on)"
        print(f"  {mark} {name:<28} GM program {t['program']:>3}{seen}")
    metrics = _flat(meta.get("metrics") or {})
    if metrics:
        print("\nmetrics:")
        width = max(len(k) for k, _ in metrics)
        for k, v in metrics:
            print(f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
    sys.stdout.flush()
    return 0
