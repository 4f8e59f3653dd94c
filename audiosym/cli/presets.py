"""``audiosym presets list | inspect P | install FILE``: the shipped and user presets, what one
holds, and adding one."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from audiosym import families
from audiosym.cli._common import print_json
from audiosym.dsp.pitch import midi_name
from audiosym.errors import PresetError
from audiosym.preset.format import (
    install_preset,
    latency_summary,
    preset_files,
    read_metadata,
    resolve_preset,
    search_folders,
)

HELP = """\
A preset is one .asym file: a trained model (its ONNX graphs), how MIDI notes map onto it, and
its named timbres (instruments it can sound like). A --preset option takes a file path, or a
name, looked up in this order (the first match wins):
  1. the shipped presets/ folder (sps-default, v3-default)
  2. the user folder: $AUDIOSYM_PRESETS, else $XDG_DATA_HOME/audiosym/presets, else
     ~/.local/share/audiosym/presets
An exported preset (audiosym export RUN --out my-sps.asym) loads by name once installed.

  list                 every findable preset: name, kind (SPS or V3), timbres, size, where it
                       lives; the folders searched
  inspect PRESET       what it holds: kind, pitch control, playable range (the MIDI notes it was
                       trained on), timbres, latency, model sizes, metrics (--json: all of it)
  install FILE.asym    check the file as the loader does, then copy it into the user folder
                       (--name NAME: under another name; --overwrite: replace one of that name)

Words (SPS, V3, latency, codebook atoms, z_pitch): docs/musicians.md.
"""

EXAMPLES = """\
examples:
  audiosym presets list
  audiosym presets inspect sps-default               # playable range, timbres, latency
  audiosym presets inspect v3-default --json
  audiosym presets install runs/my-sps.asym          # then: --preset my-sps
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

ADD_HINT = "add one: audiosym presets install FILE.asym [--name NAME]  (copies it into the user folder)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list, inspect or install presets", description=HELP, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pl = ps.add_parser("list", help="list shipped and user presets and where they live", description="List every "
                       "preset findable by name (shipped and in your user folder), and both folders.",
                       epilog=LIST_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    pl.add_argument("--json", action="store_true", help="print the list as one JSON object on stdout")
    pl.set_defaults(func=run_list)
    pi = ps.add_parser("inspect", help="show what a preset holds", description="What a preset holds: kind, "
                       "pitch control, playable range, timbres (* = default), latency, sizes, metrics.",
                       epilog=INSPECT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    pi.add_argument("preset", help="preset file path or name")
    pi.add_argument("--json", action="store_true", help="print the full metadata as JSON")
    pi.set_defaults(func=run_inspect)
    pn = ps.add_parser("install", help="copy a preset file into the user folder, to use it by name",
                       description="Check FILE.asym as the loader does (zip, schema, hashes, both graphs load in "
                                   "onnxruntime), then copy it atomically into the user preset folder as NAME.asym, "
                                   "so that --preset NAME finds it. Never replaces a preset without --overwrite.",
                       epilog="examples:\n  audiosym presets install runs/my-sps.asym\n"
                              "  audiosym presets install take2.asym --name my-sps --overwrite",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    pn.add_argument("file", metavar="FILE.asym", help="an exported preset file")
    pn.add_argument("--name", default=None, help="the name to use it by (default: the file name without .asym)")
    pn.add_argument("--overwrite", action="store_true", help="replace a user preset of that name")
    pn.add_argument("--json", action="store_true", help="print what was installed as one JSON object on stdout")
    pn.set_defaults(func=run_install)


def run_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    first: dict[str, str] = {}
    for name, path, where in preset_files():
        row: dict[str, Any] = {"name": name, "where": where, "path": str(path), "bytes": path.stat().st_size,
                               "hidden_by": first.get(name)}
        first.setdefault(name, where)
        try:
            meta = read_metadata(path)
            row.update(kind=meta["kind"], timbres=len(meta["timbres"]), error=None)
        except PresetError as exc:
            row.update(kind="?", timbres=0, error=str(exc))
        rows.append(row)
    folders = search_folders()
    if args.json:
        print_json({"shipped_dir": str(folders[0][1]) if folders[0][1] else None, "user_dir": str(folders[1][1]),
                    "search_order": [{"where": w, "folder": str(f) if f else None, "exists": bool(f and f.is_dir())}
                                     for w, f in folders],
                    "presets": rows})
        return 0
    print("names are looked up in (first match wins; a file path always works):")
    for i, (where, folder) in enumerate(folders, 1):
        state = "" if folder is not None and folder.is_dir() else "  (does not exist yet)"
        print(f"  {i}. {where:<8} {folder or '(none: not a checkout or an installed package)'}{state}")
    print()
    if not rows:
        print("no presets found")
    else:
        print(f"{'name':<24} {'kind':<5} {'timbres':>7} {'size':>9}  where")
        for r in rows:
            print(f"{r['name']:<24} {r['kind']:<5} {r['timbres']:>7} {r['bytes'] / 1e6:>7.2f}MB  {r['where']}")
            if r["hidden_by"]:
                print(f"    hidden by the {r['hidden_by']} preset of the same name; use it by path: {r['path']}")
            if r["error"]:
                print(f"    unreadable: {r['error']}")
    print(f"\n{ADD_HINT}")
    return 0


def run_install(args: argparse.Namespace) -> int:

    # lazy: onnxruntime (install checks that both graphs load) only when installing
    from audiosym.preset.session import load_preset

    src = Path(args.file).expanduser()
    if src.is_file():  # not a file: install_preset says so
        load_preset(src, device="cpu")  # the loader's checks, the graphs loading in onnxruntime included
    dest = install_preset(src, name=args.name, overwrite=args.overwrite)
    meta = read_metadata(dest)
    if args.json:
        print_json({"name": dest.stem, "path": str(dest), "kind": meta["kind"], "timbres": len(meta["timbres"])})
    print(f"installed {dest.stem}: {dest} ({meta['kind']}, {len(meta['timbres'])} timbres); use it by name: "
          f"--preset {dest.stem} (audiosym presets inspect {dest.stem})", file=sys.stderr)
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
    latency = latency_summary(meta, preset=args.preset)
    if args.json:
        print_json({"path": str(path), "bytes": path.stat().st_size, **meta, "latency": latency})
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
        ("latency", f"MIDI note-on and input level: a few ms; the input's own pitch: within "
                    f"{latency['input_pitch_ms']:.0f} ms ({latency['input_pitch_lookbehind_ms']:.0f} ms with "
                    "--pitch-follow encoder; see latency below)"),
        ("features", f"{sr} Hz, n_fft {f['n_fft']}, hop {f['hop_length']}, {f['n_bins']} log-frequency bins, {meta['window']}"),
        ("trained on", meta["train_soundfont"]),
        ("trained by", (meta.get("source") or {}).get("train_command", "unknown")),
    ]
    recorded = (meta.get("source") or {}).get("recordings")
    if recorded:
        rows += [(f"  {name}", f"{d['files']} file(s), {d['minutes']:.1f} min, {d['notes']} notes")
                 for name, d in sorted(recorded["timbres"].items())]
        rows.append(("  file list", f"sha256 {recorded['files_sha256'][:16]}… (timbre + content of each file)"))
        if recorded.get("held_out_files"):
            rows.append(("  held out", f"{recorded['held_out_files']} more file(s), for evaluation only"))
    rows += [(f"graph {g}", f"{v['bytes'] / 1e3:.0f} kB  sha256 {v['sha256'][:16]}…") for g, v in meta["graphs"].items()]
    match = meta.get("match")
    if recorded and match:
        matched = (f"{match['member']} {match['bytes'] / 1e3:.0f} kB: corrections and note envelopes of "
                   f"{len(match['timbres'])} timbres, measured on the training recordings "
                   f"({match.get('recordings', recorded['folder'])}, held-out files left out)")
    elif recorded:
        matched = "none (exported without match data)"
    elif match:
        matched = (f"{match['member']} {match['bytes'] / 1e3:.0f} kB: corrections and note envelopes of "
                   f"{len(match['timbres'])} timbres, measured on {match['soundfont']}")
    else:
        matched = f"none (add it: audiosym export {path.name} --out NEW.asym)"
    rows.append(("match data", matched))
    match = match or {}
    band = match.get("band_extension")
    if band and band["timbres"]:
        where = (f"the training recordings at {band['measure_rate'] / 1000:g} kHz" if recorded
                 else f"{match['soundfont']} at {band['measure_rate'] / 1000:g} kHz")
        banded = (f"{sr / 2000:g} kHz from the model; above it, up to 24 kHz at output rates of 32 kHz and more, "
                  f"from band profiles of {len(band['timbres'])} timbres measured on {where}")
    elif recorded:
        banded = (f"{sr / 2000:g} kHz (the model's band: no recording of 32 kHz or more to measure what lies "
                  "above it)")
    else:
        banded = f"{sr / 2000:g} kHz (the model's band; add band profiles: audiosym export {path.name} --out NEW.asym)"
    rows.append(("band", banded))
    if meta.get("description"):
        rows.insert(1, ("description", meta["description"]))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("\nlatency:")
    for label, key in (("MIDI, level", "note_and_level"), ("input pitch", "input_pitch")):
        lines = textwrap.wrap(latency[key], width=84)
        print("\n".join(f"  {label if i == 0 else '':<13} {line}" for i, line in enumerate(lines)))
    print("\ntimbres:")
    for name, t in sorted(meta["timbres"].items()):
        mark = "*" if name == meta["default_timbre"] else " "
        seen = "" if t.get("trained", True) else "  (not trained on)"
        print(f"  {mark} {name:<28} {'program change' if recorded else 'GM program'} {t['program']:>3}{seen}")
    metrics = _flat(meta.get("metrics") or {})
    if metrics:
        print("\nmetrics:")
        width = max(len(k) for k, _ in metrics)
        for k, v in metrics:
            print(f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
    sys.stdout.flush()
    return 0
