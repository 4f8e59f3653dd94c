"""Timbre-transfer quality and speed on a held-out soundfont (issues #6, #13). One JSON object on stdout.

Pairs of instruments A -> B play the same seeded melodies (generated here: random walks),
rendered from a soundfont the preset never trained on (MuseScore_General) at the output rate
(``--sample-rate``, 44.1 kHz since 2026-12-05; 16 kHz before, when the model's band was all
there was). A's rendering is re-timbred to the preset's timbre B (through
audiosym.offline.render.resynthesize, the code `audiosym resynth` runs) and compared at that
rate with the ground-truth rendering of B, never resampled. Pairs (``--pairs``): bright targets
(violin, trumpet, oboe) and soft ones (flute, clarinet) by default; a target the preset does not
name is played by a stand-in (``STAND_INS``, recorded in ``stand_ins``); ``--pairs contrasting``
is the set before 2026-12-05 (every pair of ``--instruments`` far-apart preset timbres).

Per pair (``per_pair`` in every mode): the metrics below, and ``high_band_db``: the energy above
8 kHz over the total (dB) of the output, the target (``high_band_db_target``) and the input, and
their gap; ``*_sustain``: the same over the note bodies only (see ``high_band_db``). Top level:
``mrstft_ratio_worst_pair``, ``high_band_db_gap_max`` (largest |gap| over pairs),
``high_band_db_gap_max_sustain``, ``octave_error_rate_passthrough`` (voiced frames more than 600 cents off their note,
without MIDI) beside ``octave_error_rate_ground_truth`` (pyin's own on the target render).
``--plot PNG``: spectrograms (input, output, target) of each pair's first melody.

- ``mrstft_ratio_vs_input``: mean over items of MRSTFT(output, B) / MRSTFT(A, B), where MRSTFT
  is spectral convergence + mean |log-magnitude difference| averaged over STFTs of 256..2048
  points, both signals at equal RMS (target <= 0.7, i.e. 30% closer than the input);
- ``pitch_error_cents_median``: median |pyin f0 - melody| in cents over voiced frames inside
  notes (first 80 ms and last 50 ms of each note skipped);
- ``timbre_accuracy``: a classifier trained on ground-truth renders of other melodies names B for
  the output (target >= 0.8). Features: the standardised mean log-mel shape of a render.
  Classifier (``--classifier``): multinomial logistic regression on 24 melodies per timbre
  (default since 2026-11-30 evening) or nearest centroid (4 melodies per timbre before). It was
  chosen on ground truth alone, with no model output computed (5 seeds, both presets' timbre
  sets): nearest centroid on 4 melodies names the ground truth 0.83 / 0.88 of the time (worst
  seed 0.70), logistic regression on 24 melodies 1.00 on every seed;
- ``realtime_factor_cpu``: seconds of audio per second of compute, one thread, 44.1 kHz.

Timbre set: the preset's default timbre and the farthest-apart others
(``audiosym.offline.demo.contrasting_timbres``), leaving out programs whose held-out render is broken
(``audiosym.data.soundfonts.broken_renders``: 20 dB or more under the soundfont's median program;
MuseScore_General_Lite's pianos, programs 0, 1 and 3, render ~39 dB under with hardly any
harmonics, see FINDINGS.md). ``--no-render-check`` keeps them (the set before 2026-11-30 evening).

Context keys: the classifier's accuracy on held-out ground truth (is the classifier able at
all?), how often it names B for the untransformed input (chance level), and the same metrics
for B re-timbred as B with its own melody (``*_self_resynthesis``: the floor set by the
decoder + vocoder, independent of any timbre change).

Modes: ``midi`` (the melody's notes drive pitch) and ``passthrough`` (no MIDI: the input's own
pitch, as ``audiosym resynth`` plays it by default: read by the preset's encoder over the whole
input and played as notes, audiosym.offline.pitch_track); ``passthrough_stream`` (with ``passthrough``):
the input's pitch latent streamed through as ``audiosym live`` does. The top-level keys report the ``midi`` mode with the preset's
NAMED timbre B (an instrument of its training soundfont) on the default path of ``audiosym
resynth --midi``: the match corrections stored in the preset (audiosym.timbre.match) and
``dynamics="timbre"`` (each note at the input's level, shaped by B's stored note envelope).

Ablations of that default (midi mode): ``named_no_match_input_dynamics`` (the bare decoder and
the input's level: the default before presets stored match data), ``named_match_input_dynamics``
(stored correction only), ``named_no_match`` (stored envelope only).

``reference_timbre`` (midi mode): the same items with the timbre measured from a reference
recording of B (audiosym.timbre.reference, what ``audiosym resynth --timbre-from`` does): B rendered
from the held-out soundfont playing two other seeded melodies (16 notes, 8.8 s; checked to
differ from every test melody), its pitch found by pyin (the reference's notes are not given).
``reference_timbre_with_notes``: the same recording measured with its melody given
(``reference_from_audio(notes=...)``, ``audiosym resynth --timbre-from REF.wav --timbre-from-midi
REF.mid``): no pyin, so no octave errors.
``reference_timbre_vector_only``: the reference's timbre vector without the match correction.
``oracle_spectrum`` (ceiling of the engine + vocoder, no model): A driven by B's TRUE per-note
mean spectrum (ground-truth features of the test item itself) in place of the decoder output.
``named_timbre_source_render`` (ceiling of ANY named timbre, no model): the named timbre B's own
source, program B of the preset's TRAINING soundfont, playing the test melody, scored like an
output. A named timbre is defined by that instrument; where the two soundfonts' instruments B
differ more than A and B differ, even a perfect reproduction scores a ratio above 1.

    python benchmarks/transfer.py --preset sps-default --plot transfer-sps.png > result.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import numpy as np  # noqa: E402

from audiosym.data.plans import instrument_range, timbre_name  # noqa: E402
from audiosym.data.soundfonts import BROKEN_RENDER_DB, broken_renders, find_soundfont, render_melody  # noqa: E402
from audiosym.dsp.metrics import mrstft_distance  # noqa: E402
from audiosym.dsp.pitch import midi_to_hz  # noqa: E402
from audiosym.io.midifile import MelodyNote  # noqa: E402
from audiosym.offline.demo import contrasting_timbres  # noqa: E402
from audiosym.offline.render import resynthesize  # noqa: E402
from audiosym.preset.session import load_preset  # noqa: E402
from audiosym.timbre.reference import reference_from_audio  # noqa: E402

REFERENCE_SEED_OFFSET = 5000  # reference melodies: their own seed, disjoint from the test melodies

NOTE_S, GAP_S, N_NOTES = 0.5, 0.05, 8

#: Default pairs (source -> target): bright targets (violin, trumpet, oboe) and soft ones (flute,
#: clarinet), from bright, soft and plucked sources.
DEFAULT_PAIRS = ("violin:flute,flute:clarinet,oboe:trumpet,harpsichord:violin,flute:violin,clarinet:oboe,"
                 "trumpet:flute,flute:trumpet")
#: A target the preset does not name is played by the first of these it does (recorded in
#: ``stand_ins``); a source needs no stand-in: any GM program renders.
STAND_INS = {"violin": ("viola", "string_ensemble_1", "cello"), "trumpet": ("muted_trumpet", "trombone"),
             "oboe": ("soprano_sax", "clarinet"), "clarinet": ("oboe", "soprano_sax"), "flute": ("piccolo", "recorder")}
HIGH_BAND_HZ = 8000.0  # the model's band ends here; energy above it is what band extension adds
OCTAVE_ERROR_CENTS = 600.0  # a voiced frame this far from its note is on another octave (or worse)
GM_PROGRAMS = {timbre_name(p): p for p in range(128)}


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def melody(rng: np.random.Generator, lo: int, hi: int) -> list[MelodyNote]:
    """A seeded random walk of N_NOTES notes (steps of 1..4 semitones) inside [lo, hi]."""
    p = int(rng.integers(lo, hi + 1))
    notes = []
    for i in range(N_NOTES):
        notes.append(MelodyNote(i * NOTE_S, i * NOTE_S + NOTE_S - GAP_S, p, int(rng.integers(80, 111))))
        step = int(rng.integers(1, 5)) * (1 if rng.random() < 0.5 else -1)
        p = p + step if lo <= p + step <= hi else p - step
    return notes


def render(sf_path: str, program: int, notes: list[MelodyNote], sample_rate: int) -> np.ndarray:
    """Ground-truth rendering at -20 dBFS RMS (loudness is not what is compared)."""
    y = render_melody(sf_path, program, [(n.onset_s, n.duration_s, n.pitch, n.velocity) for n in notes],
                      sample_rate=sample_rate, tail_seconds=0.3)
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    return (y * (0.1 / rms)).astype(np.float32) if rms > 1e-6 else y


def mrstft(x: np.ndarray, ref: np.ndarray) -> float:
    """Multi-resolution STFT distance of ``x`` to ``ref`` (both rescaled to unit RMS)."""
    n = min(len(x), len(ref))
    x = x[:n] / (np.sqrt(np.mean(x[:n] ** 2)) + 1e-9)
    ref = ref[:n] / (np.sqrt(np.mean(ref[:n] ** 2)) + 1e-9)
    return mrstft_distance(x, ref)


def _band_energy(y: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(energy above HIGH_BAND_HZ, total energy) of ``y`` (Welch: every part weighs the same)."""
    from scipy.signal import welch

    f, p = welch(y.astype(np.float64), fs=sample_rate, nperseg=min(4096, len(y)))
    scale = len(y) * float(np.mean(y.astype(np.float64) ** 2)) / max(float(p.sum()), 1e-30)
    return float(p[f >= HIGH_BAND_HZ].sum() * scale), float(p.sum() * scale)


def high_band_db(y: np.ndarray, sample_rate: int, notes: list[MelodyNote] | None = None) -> float:
    """Energy above HIGH_BAND_HZ over the total (dB); NaN where the rate has no such band. With
    ``notes``: over the note bodies only (60 ms after each onset to its offset, each measured on
    its own: no splice between them), the sound of held notes without what happens at note-on
    and note-off. The soundfonts' renders of some instruments carry most of their energy above
    8 kHz in a burst at each note-off (FluidR3's and MuseScore's clarinet: 20-25 dB over the held
    tone in the 50 ms after a note-off), a renderer's sample cut rather than the instrument;
    ``high_band_db_sustain`` compares the held tones alone."""
    if sample_rate / 2 <= HIGH_BAND_HZ * 1.05:
        return float("nan")
    parts = [y] if notes is None else [y[int((n.onset_s + 0.06) * sample_rate):int(n.offset_s * sample_rate)]
                                       for n in notes]
    hi = tot = 0.0
    for part in parts:
        if len(part) >= 256:
            h, t = _band_energy(part, sample_rate)
            hi, tot = hi + h, tot + t
    return float(10 * np.log10(hi / (tot + 1e-30) + 1e-30))


def resolve_pairs(spec: str, preset) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """``"a:b,c:d"`` -> (pairs with targets the preset names, stand-ins used, pairs skipped)."""
    pairs, stand_ins, skipped = [], {}, []
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        a, sep, b = item.partition(":")
        if not sep or a not in GM_PROGRAMS or b not in GM_PROGRAMS:
            raise SystemExit(f"--pairs: {item!r} must be SOURCE:TARGET with GM timbre names, e.g. violin:flute")
        if b not in preset.timbre_names:
            sub = next((s for s in STAND_INS.get(b, ()) if s in preset.timbre_names), None)
            if sub is None:
                skipped.append(item)
                continue
            stand_ins[b] = sub
            b = sub
        if a != b and (a, b) not in pairs:
            pairs.append((a, b))
    return pairs, stand_ins, skipped


def spectrogram_plot(path: str, panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], sample_rate: int) -> None:
    """One row per pair: input, output, target spectrograms (dB, linear frequency to Nyquist)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import spectrogram

    fig, axes = plt.subplots(len(panels), 3, figsize=(13, 2.4 * len(panels)), squeeze=False, sharey=True)
    for row, (title, ya, out, yb) in zip(axes, panels):
        for ax, (name, y) in zip(row, (("input", ya), ("output", out), ("target", yb))):
            f, t, sxx = spectrogram(y, fs=sample_rate, nperseg=2048, noverlap=1536)
            ax.pcolormesh(t, f / 1000, 10 * np.log10(sxx + 1e-12), vmin=-120, vmax=-30, shading="auto", cmap="magma")
            ax.axhline(HIGH_BAND_HZ / 1000, color="w", lw=0.6, ls="--")
            ax.set_title(f"{title}: {name}  ({high_band_db(y, sample_rate):.0f} dB above 8 kHz)", fontsize=8)
        row[0].set_ylabel("kHz")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def pitch_errors(y: np.ndarray, notes: list[MelodyNote], sample_rate: int) -> tuple[np.ndarray, float]:
    """(|cents| of voiced frames inside notes, voiced fraction of those frames) with pyin."""
    import librosa

    lo, hi = min(n.pitch for n in notes), max(n.pitch for n in notes)
    hop = 256
    # an octave around the melody's range, so that octave errors are seen (and counted), not unvoiced
    f0, voiced, _ = librosa.pyin(y, fmin=float(midi_to_hz(lo - 15)), fmax=float(midi_to_hz(hi + 15)),
                                 sr=sample_rate, frame_length=2048, hop_length=hop, resolution=0.05)
    t = librosa.times_like(f0, sr=sample_rate, hop_length=hop)
    errs, n_in, n_voiced = [], 0, 0
    for note in notes:
        sel = (t >= note.onset_s + 0.08) & (t <= note.offset_s - 0.05)
        n_in += int(sel.sum())
        ok = sel & voiced & np.isfinite(f0)
        n_voiced += int(ok.sum())
        errs.extend(np.abs(1200 * np.log2(f0[ok] / midi_to_hz(note.pitch))).tolist())
    return np.asarray(errs), (n_voiced / n_in if n_in else 0.0)


def timbre_features(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean spectral shape: 40-band log-mel of the active frames, each frame's peak removed.

    Shape only: in transfer mode the output's loudness contour is the input's by design, so
    temporal statistics would reward the input's dynamics, not the timbre. (Also tried on
    sps-default, 20 items: + std over time 0.20, mean-normalised frames 0.35, 19 MFCCs 0.15
    on outputs, vs 0.25 for this one — the low accuracy is not an artefact of the feature.)"""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=1024, hop_length=256, n_mels=40, fmax=7600)
    db = 10 * np.log10(mel + 1e-10)
    energy = db.max(axis=0)
    active = db[:, energy > energy.max() - 40]
    active = active - active.max(axis=0, keepdims=True)  # per-frame level removed: spectral shape only
    return active.mean(axis=1)


class NearestCentroid:
    def fit(self, x: np.ndarray, labels: list[str]) -> NearestCentroid:
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        z = (x - self.mu) / self.sd
        self.classes = sorted(set(labels))
        self.centroids = np.stack([z[[lab == c for lab in labels]].mean(0) for c in self.classes])
        return self

    def predict(self, x: np.ndarray) -> str:
        z = (x - self.mu) / self.sd
        return self.classes[int(np.argmin(((self.centroids - z) ** 2).sum(1)))]


class LogisticClassifier:
    """Multinomial logistic regression (scikit-learn) on standardised features."""

    def fit(self, x: np.ndarray, labels: list[str]) -> LogisticClassifier:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, labels)
        return self

    def predict(self, x: np.ndarray) -> str:
        return str(self.model.predict(x[None, :])[0])


CLASSIFIERS = {"logreg": LogisticClassifier, "centroid": NearestCentroid}


class OracleSpectrumDecoder:
    """A decoder session that answers with given spectra: ``spectra[midi] -> logmag [n_bins]``
    (nearest pitch to each frame's pitch latent). Only for the ceiling measurement: what the engine
    + vocoder make of the true spectrum of each note (:func:`oracle_preset`)."""

    def __init__(self, preset, spectra: dict[int, np.ndarray]):
        self._preset, self._spectra = preset, spectra
        self._keys = np.array(sorted(spectra))

    def run(self, output_names, input_feed):
        pitch = np.asarray(input_feed[self._preset.pitch_latent])
        midi = np.atleast_1d(self._preset.latent_to_midi(pitch[:, -1]))
        rows = [self._spectra[int(self._keys[np.argmin(np.abs(self._keys - m))]) if np.isfinite(m) else
                              int(self._keys[0])] for m in midi]
        return [np.stack(rows)[:, None, :]]

    def get_providers(self):
        return ["oracle"]


def oracle_preset(preset, spectra: dict[int, np.ndarray]):
    """``preset`` whose decoder is :class:`OracleSpectrumDecoder` over ``spectra``."""
    return replace(preset, decoder=OracleSpectrumDecoder(preset, spectra))


def note_spectra(y: np.ndarray, notes: list[MelodyNote], cfg, sample_rate: int) -> dict[int, np.ndarray]:
    """Per note pitch: log of the mean magnitude of the frames centred inside the note (from 100 ms
    after its onset to 50 ms before its offset), in the model's features (``y`` at ``sample_rate``
    is brought to the model's rate first: before 2026-12-05 this took ``y`` as it was, right only
    when the benchmark ran at the model's 16 kHz)."""
    from audiosym.dsp.features import features
    from audiosym.io.audio import resample

    if sample_rate != cfg.sample_rate:
        y = resample(np.asarray(y, dtype=np.float32), orig_sample_rate=sample_rate, target_sample_rate=cfg.sample_rate)
    logmag = features(y, cfg)
    centre = ((np.arange(len(logmag)) + 1) * cfg.hop_length - cfg.n_fft / 2) / cfg.sample_rate
    out = {}
    for n in notes:
        sel = (centre >= n.onset_s + 0.1) & (centre <= n.offset_s - 0.05)
        if sel.any():
            out[n.pitch] = np.log(np.exp(logmag[sel].astype(np.float64)).mean(0) + 1e-9).astype(np.float32)
    return out


def realtime_factor(preset, timbre: str, sf_path: str, program: int, sample_rate: int, seconds: float) -> float:
    rng = np.random.default_rng(7)
    lo, hi = preset.midi_range
    notes = []
    while not notes or notes[-1].offset_s < seconds:
        t0 = notes[-1].offset_s + GAP_S if notes else 0.0
        notes += [MelodyNote(t0 + n.onset_s, t0 + n.offset_s, n.pitch, n.velocity) for n in melody(rng, lo, hi)]
    y = render_melody(sf_path, program, [(n.onset_s, n.duration_s, n.pitch, n.velocity) for n in notes],
                      sample_rate=sample_rate, tail_seconds=0.0)
    preset = preset.with_stored_match()
    resynthesize(preset, y[:sample_rate], sample_rate=sample_rate, timbre=timbre, notes=notes)  # warm-up
    start = time.perf_counter()
    resynthesize(preset, y, sample_rate=sample_rate, timbre=timbre, notes=notes)
    return (len(y) / sample_rate) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="sps-default")
    ap.add_argument("--soundfont", default="MuseScore_General", help="held-out soundfont (name or path)")
    ap.add_argument("--pairs", default=DEFAULT_PAIRS,
                    help="SOURCE:TARGET pairs of GM timbre names (a target the preset lacks is played by a stand-in, "
                         "see STAND_INS), or 'contrasting': every pair of --instruments far-apart preset timbres "
                         f"(default: {DEFAULT_PAIRS})")
    ap.add_argument("--instruments", type=int, default=5, help="with --pairs contrasting: timbres used (n * (n - 1) pairs)")
    ap.add_argument("--plot", default=None, metavar="PNG",
                    help="write spectrograms (input, output, target) of each pair's first melody to this PNG")
    ap.add_argument("--melodies", type=int, default=2, help="test melodies per pair")
    ap.add_argument("--train-melodies", type=int, default=24, help="ground-truth melodies per timbre for the classifier")
    ap.add_argument("--classifier", choices=sorted(CLASSIFIERS), default="logreg",
                    help="timbre classifier (before 2026-11-30 evening: centroid with --train-melodies 4)")
    ap.add_argument("--sample-rate", type=int, default=44100,
                    help="rate of the input, the output and the ground truth they are compared with (Hz; "
                         "16000 before 2026-12-05, when the model's band was all there was)")
    ap.add_argument("--modes", default="midi,passthrough")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtf-seconds", type=float, default=20.0)
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip the reference-recording timbre (audiosym.timbre.reference) rows")
    ap.add_argument("--no-ablations", dest="ablations", action="store_false",
                    help="skip the rows without the stored match correction and/or note envelopes")
    ap.add_argument("--no-oracle", dest="oracle", action="store_false",
                    help="skip the oracle-spectrum ceiling rows")
    ap.add_argument("--no-render-check", dest="render_check", action="store_false",
                    help="keep timbres whose held-out render is broken (audiosym.data.soundfonts.broken_renders: "
                         "20 dB or more under the soundfont's median program; MuseScore_General_Lite's pianos)")
    args = ap.parse_args(argv)

    bare = load_preset(args.preset, device="cpu", intra_op_threads=1)
    preset = bare.with_stored_match()  # what `audiosym resynth` plays by default
    sf_path = find_soundfont(args.soundfont)
    sr = args.sample_rate
    excluded = {}
    if args.render_check:  # a broken held-out render is no ground truth (FINDINGS.md)
        broken = broken_renders(sf_path)
        excluded = {n: {"program": int(t["program"]), "db_under_median_program": broken[int(t["program"])]}
                    for n, t in preset.metadata["timbres"].items() if int(t["program"]) in broken}
        if excluded:
            log(f"render check: {os.path.basename(sf_path)} renders {sorted(excluded)} {BROKEN_RENDER_DB:.0f} dB or "
                "more under its median program; left out of the timbre set")
    stand_ins: dict[str, str] = {}
    skipped_pairs: list[str] = []
    if args.pairs == "contrasting":
        targets = contrasting_timbres(preset, args.instruments, exclude=excluded)
        pairs = [(a, b) for a in targets for b in targets if a != b]
    else:
        pairs, stand_ins, skipped_pairs = resolve_pairs(args.pairs, preset)
        pairs = [(a, b) for a, b in pairs if b not in excluded]
        for item in skipped_pairs:
            log(f"skip {item}: the preset names no such target and no stand-in (STAND_INS)")
    names = list(dict.fromkeys([x for ab in pairs for x in ab]))  # every instrument involved, in order
    program = {n: int(preset.metadata["timbres"][n]["program"]) if n in preset.metadata["timbres"] else GM_PROGRAMS[n]
               for n in names}
    plo, phi = preset.midi_range
    span = {}
    for n in names:
        lo, hi = instrument_range(program[n])
        span[n] = (max(lo, plo, 48), min(hi, phi, 84))
    train_sf_path = find_soundfont(bare.metadata["calibration"]["soundfont"])
    log(f"preset {preset.name} ({preset.kind}); timbres {names}; soundfont {os.path.basename(sf_path)}")

    # the classifier: ground truth of every timbre on melodies the test never uses
    rng = np.random.default_rng(args.seed + 1000)
    feats, labels = [], []
    for n in names:
        for _ in range(args.train_melodies):
            feats.append(timbre_features(render(sf_path, program[n], melody(rng, *span[n]), sr), sr))
            labels.append(n)
    clf = CLASSIFIERS[args.classifier]().fit(np.stack(feats), labels)

    # reference recordings of each timbre: held-out soundfont, their own seeded melodies
    rng = np.random.default_rng(args.seed + REFERENCE_SEED_OFFSET)
    references, labelled, ref_melodies, ref_info = {}, {}, [], {}
    if args.reference:
        for n in names:
            first, second = melody(rng, *span[n]), melody(rng, *span[n])
            shift = N_NOTES * NOTE_S + 0.4
            notes = first + [MelodyNote(x.onset_s + shift, x.offset_s + shift, x.pitch, x.velocity) for x in second]
            ref_melodies += [[x.pitch for x in first], [x.pitch for x in second]]
            start = time.perf_counter()
            y_ref = render(sf_path, program[n], notes, sr)
            ref = reference_from_audio(preset, y_ref, sample_rate=sr, name=f"ref:{n}",
                                       source=f"{os.path.basename(sf_path)} program {program[n]}")
            seconds = time.perf_counter() - start
            references[n] = ref
            labelled[n] = reference_from_audio(preset, y_ref, sample_rate=sr, name=f"ref:{n}", notes=notes,
                                               source=f"{os.path.basename(sf_path)} program {program[n]}")
            ref_info[n] = {"frames": ref.frames, "midi_range_found": list(ref.midi_range),
                           "midi_range_played": [min(x.pitch for x in notes), max(x.pitch for x in notes)],
                           "seconds_to_measure": round(seconds, 2)}
            log(f"reference {n}: {ref.frames} frames, pitch {ref.midi_range[0]:.1f}..{ref.midi_range[1]:.1f} found, "
                f"{ref_info[n]['midi_range_played']} played")
        with_ref = preset.with_references(list(references.values()))
        with_labelled = preset.with_references(list(labelled.values()))
        vector_only = preset.with_references([replace(r, relative=np.zeros_like(r.relative),
                                                       absolute=np.zeros_like(r.absolute)) for r in references.values()])

    modes = [m for m in args.modes.split(",") if m]
    extra_modes = ["reference", "reference_with_notes", "reference_vector_only"] if args.reference else []
    extra_modes += ["oracle_spectrum"] if args.oracle else []
    if args.ablations:
        extra_modes += ["named_no_match_input_dynamics", "named_match_input_dynamics", "named_no_match"]
    extra_modes.append("named_timbre_source_render")
    if "passthrough" in modes:
        extra_modes.append("passthrough_stream")
    rows: dict[str, list[dict]] = {m: [] for m in modes + extra_modes}
    test_melodies = []
    reference = []
    rng = np.random.default_rng(args.seed)
    panels = []
    for a, b in pairs:
        lo, hi = max(span[a][0], span[b][0]), min(span[a][1], span[b][1])
        if hi - lo < 5:
            log(f"skip {a} -> {b}: common range {lo}..{hi} is under 5 semitones")
            continue
        for _ in range(args.melodies):
            notes = melody(rng, lo, hi)
            test_melodies.append([x.pitch for x in notes])
            ya, yb = render(sf_path, program[a], notes, sr), render(sf_path, program[b], notes, sr)
            d_in = mrstft(ya, yb)
            hb_in, hb_target = high_band_db(ya, sr), high_band_db(yb, sr)
            hb_target_sustain = high_band_db(yb, sr, notes)
            # the pipeline's floor: B re-timbred as B (what no timbre change at all costs)
            yself, _ = resynthesize(preset, yb, sample_rate=sr, timbre=b, notes=notes)
            gt_err, _ = pitch_errors(yb, notes, sr)
            reference.append({"pred_input": clf.predict(timbre_features(ya, sr)), "target": b,
                              "self_ratio": mrstft(yself, yb) / d_in,
                              "pred_self": clf.predict(timbre_features(yself, sr)),
                              "pred_truth": clf.predict(timbre_features(yb, sr)),
                              "gt_cents": float(np.median(gt_err)) if len(gt_err) else float("nan"),
                              "gt_octave": float(np.mean(gt_err > OCTAVE_ERROR_CENTS)) if len(gt_err) else float("nan")})
            runs = [(m, preset, b, notes if m == "midi" else None, "timbre") for m in modes]
            if "passthrough" in modes:
                runs += [("passthrough_stream", preset, b, None, "timbre")]
            if args.reference:
                runs += [("reference", with_ref, f"ref:{b}", notes, "timbre"),
                         ("reference_with_notes", with_labelled, f"ref:{b}", notes, "timbre"),
                         ("reference_vector_only", vector_only, f"ref:{b}", notes, "timbre")]
            if args.oracle:
                runs += [("oracle_spectrum", oracle_preset(bare, note_spectra(yb, notes, preset.features, sr)),
                          b, notes, "timbre")]
            if args.ablations:
                runs += [("named_no_match_input_dynamics", bare, b, notes, "input"),
                         ("named_match_input_dynamics", preset, b, notes, "input"),
                         ("named_no_match", bare, b, notes, "timbre")]
            for mode, model, timbre, mode_notes, dynamics in runs + [("named_timbre_source_render", None, b, notes, "")]:
                if model is None:  # the named timbre's source instrument itself (training soundfont)
                    out = render(train_sf_path, program[b], notes, sr)
                elif mode == "passthrough_stream":
                    out, _ = resynthesize(model, ya, sample_rate=sr, timbre=timbre, input_pitch="stream")
                else:
                    out, _ = resynthesize(model, ya, sample_rate=sr, timbre=timbre, notes=mode_notes,
                                          dynamics=dynamics)
                errs, voiced = pitch_errors(out, notes, sr)
                rows[mode].append({
                    "a": a, "b": b, "ratio": mrstft(out, yb) / d_in, "cents": errs, "voiced": voiced,
                    "pred": clf.predict(timbre_features(out, sr)),
                    "hb_out": high_band_db(out, sr), "hb_target": hb_target, "hb_input": hb_in,
                    "hb_out_sustain": high_band_db(out, sr, notes),
                    "hb_target_sustain": hb_target_sustain,
                })
                if mode == modes[0] and args.plot and not any(t.startswith(f"{a} -> {b}") for t, *_ in panels):
                    panels.append((f"{a} -> {b}", ya, out, yb))
            log(f"{a:>12s} -> {b:<12s} " + "  ".join(
                f"{m}: ratio {rows[m][-1]['ratio']:.2f} cents {np.median(rows[m][-1]['cents']) if len(rows[m][-1]['cents']) else float('nan'):.0f} "
                f"-> {rows[m][-1]['pred']}" for m in modes + extra_modes))

    def summary(rs: list[dict]) -> dict:
        cents = np.concatenate([r["cents"] for r in rs]) if rs else np.zeros(0)
        per_target, per_pair = {}, {}
        for n in names:
            sel = [r for r in rs if r["b"] == n]
            if sel:
                per_target[n] = {"mrstft_ratio": float(np.mean([r["ratio"] for r in sel])),
                                 "timbre_accuracy": float(np.mean([r["pred"] == n for r in sel]))}
        for a, b in pairs:
            sel = [r for r in rs if (r["a"], r["b"]) == (a, b)]
            if not sel:
                continue
            c = np.concatenate([r["cents"] for r in sel])
            hb = {k: float(np.mean([r[k] for r in sel]))
                  for k in ("hb_out", "hb_target", "hb_input", "hb_out_sustain", "hb_target_sustain")}
            per_pair[f"{a}->{b}"] = {
                "mrstft_ratio": float(np.mean([r["ratio"] for r in sel])),
                "timbre_accuracy": float(np.mean([r["pred"] == b for r in sel])),
                "pitch_error_cents_median": float(np.median(c)) if len(c) else float("nan"),
                "octave_error_rate": float(np.mean(c > OCTAVE_ERROR_CENTS)) if len(c) else float("nan"),
                "high_band_db": hb["hb_out"], "high_band_db_target": hb["hb_target"],
                "high_band_db_input": hb["hb_input"], "high_band_db_gap": hb["hb_out"] - hb["hb_target"],
                "high_band_db_sustain": hb["hb_out_sustain"], "high_band_db_target_sustain": hb["hb_target_sustain"],
                "high_band_db_gap_sustain": hb["hb_out_sustain"] - hb["hb_target_sustain"],
            }
        ratios = {k: v["mrstft_ratio"] for k, v in per_pair.items()}
        gaps = [abs(v["high_band_db_gap"]) for v in per_pair.values() if np.isfinite(v["high_band_db_gap"])]
        held = [abs(v["high_band_db_gap_sustain"]) for v in per_pair.values()
                if np.isfinite(v["high_band_db_gap_sustain"])]
        return {
            "mrstft_ratio_vs_input": float(np.mean([r["ratio"] for r in rs])),
            "mrstft_ratio_median": float(np.median([r["ratio"] for r in rs])),
            "mrstft_ratio_worst_pair": max(ratios.values()) if ratios else float("nan"),
            "worst_pair": max(ratios, key=ratios.__getitem__) if ratios else None,
            "high_band_db_gap_max": max(gaps) if gaps else float("nan"),
            "high_band_db_gap_mean": float(np.mean(gaps)) if gaps else float("nan"),
            "high_band_db_gap_max_sustain": max(held) if held else float("nan"),
            "pitch_error_cents_median": float(np.median(cents)) if len(cents) else float("nan"),
            "pitch_error_cents_p90": float(np.percentile(cents, 90)) if len(cents) else float("nan"),
            "octave_error_rate": float(np.mean(cents > OCTAVE_ERROR_CENTS)) if len(cents) else float("nan"),
            "voiced_fraction": float(np.mean([r["voiced"] for r in rs])),
            "timbre_accuracy": float(np.mean([r["pred"] == r["b"] for r in rs])),
            "per_target": per_target,
            "per_pair": per_pair,
        }

    if args.plot and panels:
        spectrogram_plot(args.plot, panels, sr)
        log(f"wrote {args.plot} (spectrograms: input, output, target per pair)")
    log("measuring the realtime factor (one thread) ...")
    rtf_timbre, rtf_source = pairs[0][1], program[pairs[0][0]]
    rtf44 = realtime_factor(preset, rtf_timbre, sf_path, rtf_source, 44100, args.rtf_seconds)
    rtf16 = realtime_factor(preset, rtf_timbre, sf_path, rtf_source, 16000, args.rtf_seconds)
    by_mode = {m: summary(rows[m]) for m in modes}
    extra = {m: summary(rows[m]) for m in extra_modes}
    if args.reference:
        overlap = [m for m in ref_melodies if m in test_melodies]
        extra["reference"]["references"] = ref_info
        extra["reference"]["reference_melodies_disjoint_from_tests"] = not overlap
    main_mode = by_mode.get("midi") or next(iter(by_mode.values()))
    result = {
        "preset": preset.name, "kind": preset.kind, "soundfont": os.path.basename(sf_path),
        "timbres": names, "timbres_excluded_broken_render": excluded,
        "classifier": f"{args.classifier} on {args.train_melodies} melodies per timbre", "pairs": len(rows[modes[0]]),
        "sample_rate": sr,
        "pair_list": [f"{a}->{b}" for a, b in pairs], "stand_ins": stand_ins, "pairs_skipped": skipped_pairs,
        "band_extension": bare.has_band and sr >= 32000,
        **{k: main_mode[k] for k in ("mrstft_ratio_vs_input", "mrstft_ratio_worst_pair", "worst_pair",
                                      "high_band_db_gap_max", "high_band_db_gap_mean", "high_band_db_gap_max_sustain",
                                      "pitch_error_cents_median",
                                      "timbre_accuracy")},
        "octave_error_rate_passthrough": by_mode["passthrough"]["octave_error_rate"] if "passthrough" in by_mode
        else None,
        "octave_error_rate_ground_truth": float(np.nanmean([r["gt_octave"] for r in reference])),
        "realtime_factor_cpu": rtf44, "realtime_factor_cpu_16k": rtf16,
        "timbre_accuracy_ground_truth": float(np.mean([r["pred_truth"] == r["target"] for r in reference])),
        "timbre_accuracy_input_named_target": float(np.mean([r["pred_input"] == r["target"] for r in reference])),
        "mrstft_ratio_self_resynthesis": float(np.mean([r["self_ratio"] for r in reference])),
        "timbre_accuracy_self_resynthesis": float(np.mean([r["pred_self"] == r["target"] for r in reference])),
        "pitch_error_cents_median_ground_truth": float(np.nanmedian([r["gt_cents"] for r in reference])),
        "modes": by_mode,
        **({"reference_timbre": extra["reference"], "reference_timbre_with_notes": extra["reference_with_notes"],
            "reference_timbre_vector_only": extra["reference_vector_only"]}
           if args.reference else {}),
        **({"oracle_spectrum": extra["oracle_spectrum"]} if args.oracle else {}),
        "named_timbre_source_render": extra["named_timbre_source_render"],
        **({"passthrough_stream": extra["passthrough_stream"]} if "passthrough" in modes else {}),
        **({k: extra[k] for k in ("named_no_match_input_dynamics", "named_match_input_dynamics", "named_no_match")}
           if args.ablations else {}),
        "stores_match": bare.match is not None,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        "command": "python benchmarks/transfer.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
