"""The real-time engine: audio + MIDI in, re-timbred audio out, at the device rate, torch-free.

Signal paths (DESIGN.md "Latency budget"):

- voices: *synth* mode with ``voices > 1`` is polyphonic (audiosym.engine.voices: voice
  allocation, sustain pedal, per-channel bend, one batched decoder call per block for all voices);
  ``voices=1`` (the default) and transfer mode are monophonic, last-note priority;
- loudness: *transfer* mode: a peak-hold envelope follower on the input at the device rate
  (``hold_ms`` window, ``envelope_ms`` one-pole smoothing); with ``dynamics="timbre"`` a held
  MIDI note instead sounds at the input's peak level since its note-on times the timbre's own
  note envelope (stored in the preset, audiosym.timbre.match: a piano decays, an organ holds) and
  releases over the ADSR release (audiosym.engine.dynamics); *synth* mode: ADSR x velocity;
- pitch: the held MIDI note (+ bend) through the preset's calibration, applied at once; with no
  note held (transfer mode) the input's own pitch: a short-window estimate (``pitch_follow=
  "fast"``, audiosym.engine.pitch_follow) or, as before, the encoder's (``"encoder"``);
- timbre: the preset's named timbre (program change switches it, CC1 morphs to ``morph_timbre``);
  a timbre the preset marks as sub-harmonic (an organ's 16' stop) is played on the f0 / 2
  partial series;
- the decoder turns (pitch latent, timbre) into a magnitude frame, the vocoder chosen by name
  (audiosym.engine.vocoder; default ``"harmonic"``, harmonic-plus-noise) turns it into audio at
  ``f0 = MIDI pitch``.

Decoding happens at a note-on/legato note change immediately (same sample), and otherwise on a
fixed control grid every ``control_ms`` (absolute sample positions, so blocking never moves it)
when something changed. Encoder frames arrive when the resampled input completes a hop; the
encoder runs only on frames that arrive while no note is held (only then is their pitch heard).

MIDI events come with the block they belong to: ``audiosym.engine.control.MidiEvent(offset, data)`` or a
tuple ``(offset, status, data1[, data2])``, ``offset`` in samples from the block start (see
audiosym.engine.control). ``latency_samples`` is the measured-by-test delay of the fast path (input onset
or note-on to half the output level); ``pitch_latency_samples`` that of the input-pitch
pass-through (the short window's, or the encoder's analysis window with ``"encoder"``).

Everything the engine remembers is one immutable :class:`audiosym.engine.state.EngineState`;
``out, state = engine.step(block, events, state)`` is the pure form, ``process`` keeps the state
for you. Output is identical (to float rounding) for any blocking, and :meth:`Engine.render`
processes a whole signal as one block, batching all encoder and decoder calls.
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from audiosym.dsp.features import features_step, init_state
from audiosym.dsp.resample import StreamResampler
from audiosym.engine.control import (
    Adsr,
    AdsrState,
    ControlState,
    adsr_gate,
    adsr_run,
    apply_message,
    as_events,
)
from audiosym.engine.dynamics import ENGINE_DYNAMICS, NoteCurves, note_gain, releasing
from audiosym.engine.level import envelope_kernel, input_level
from audiosym.engine.pitch_follow import DEFAULT_PITCH_FOLLOW, Cut, Follow, follower_for, unheld
from audiosym.engine.state import EngineState, as_block, check_arguments
from audiosym.engine.vocoder import get_vocoder
from audiosym.engine.voices import Polyphony, check_voices
from audiosym.preset.model import Preset
from audiosym.timbre.band import BandRows


class Engine:
    """Play a preset from MIDI (+ audio in *transfer* mode). See the module docstring.

    Parameters
    ----------
    preset : the :class:`audiosym.preset.model.Preset` to play (composed as wanted: stored match,
        reference timbres, transposition).
    timbre : a name in ``preset.timbre_names``.
    sample_rate : device rate in Hz (>= the model rate, 16 kHz; 44.1 and 48 kHz are typical).
    block_size : the host's nominal block size (only for ``block_ms``; ``process`` takes any length).
    mode : ``"transfer"`` (audio in drives loudness) or ``"synth"`` (ADSR drives loudness).
    bend_range_semitones : full pitch-bend deflection, default 2 semitones.
    morph_timbre : timbre CC1 morphs towards (CC1 = 0: ``timbre``, 127: ``morph_timbre``).
    adsr : :class:`audiosym.engine.control.Adsr` for synth mode.
    synth_level : RMS of a velocity-127 note at full ADSR level in synth mode (0.1 = -20 dBFS).
    envelope_ms, hold_ms : transfer-mode envelope follower smoothing and peak-hold window.
    dynamics : transfer mode, while a MIDI note is held: ``"input"`` (the output follows the
        input's level) or ``"timbre"`` (the input's peak level since note-on times the timbre's
        stored note envelope; timbres without one follow the input). The engine's own default
        (``ENGINE_DYNAMICS``, ``"input"``) predates the note envelopes and is kept so code built
        on the engine keeps its output; the commands and offline functions pass
        ``DEFAULT_DYNAMICS`` (``"timbre"``, audiosym.engine.dynamics), what a musician expects.
    control_ms : control grid period; bend, CC and encoder changes are decoded at most this often,
        and each new spectrum is ramped in over this time (2 ms = 96 samples at 48 kHz).
    vocoder : ``"harmonic"`` (harmonic-plus-noise, no added latency) or ``"rtpghi"`` (phase
        reconstruction, ~70 ms later; :data:`audiosym.engine.vocoder.VOCODERS`).
    voices : synth mode: notes that sound at once (1 .. 64); 1 (default): monophonic, last-note
        priority, as before polyphony; the commands play ``DEFAULT_VOICES`` (8). Transfer: mono.
    pitch_follow : no note held (transfer): ``"fast"`` (default; a short-window estimate, ~25 ms, the
        encoder guards its octave; audiosym.engine.pitch_follow) or ``"encoder"`` (~83 ms, as before).
    """

    def __init__(self, preset: Preset, *, timbre: str, sample_rate: int, block_size: int | None = None,
                 mode: str = "transfer", bend_range_semitones: float = 2.0,
                 morph_timbre: str | None = None, adsr: Adsr | None = None, synth_level: float = 0.1,
                 envelope_ms: float = 2.0, hold_ms: float = 20.0, control_ms: float = 2.0,
                 n_harmonics: int = 160, noise_bands: int = 16, dynamics: str = ENGINE_DYNAMICS,
                 vocoder: str = "harmonic", voices: int = 1, pitch_follow: str = DEFAULT_PITCH_FOLLOW) -> None:
        self.preset = preset
        self.cfg = preset.features
        check_arguments(preset, timbre=timbre, morph_timbre=morph_timbre, sample_rate=sample_rate,
                        model_rate=self.cfg.sample_rate, block_size=block_size, mode=mode, dynamics=dynamics)
        self.sample_rate, self.block_size, self.mode = int(sample_rate), block_size, mode
        self.dynamics = dynamics
        self.bend_range_semitones = float(bend_range_semitones)
        self.timbre, self.morph_timbre = timbre, morph_timbre
        self.adsr, self.synth_level = adsr or Adsr(), float(synth_level)
        self.release_samples = max(self.adsr.release_s * self.sample_rate, 1.0)  # dynamics="timbre" note-off
        self._note_curves = NoteCurves(preset, sample_rate=self.sample_rate)  # dynamics="timbre" note-on
        self.hold = max(int(round(hold_ms * sample_rate / 1000)), 1)
        self.env_alpha = float(np.exp(-1.0 / max(envelope_ms * sample_rate / 1000, 1e-9)))
        self.control_period = max(int(round(control_ms * sample_rate / 1000)), 1)
        self.pitch_name, self.timbre_name = preset.pitch_latent, preset.timbre_latent
        self.linear = preset.continuous_pitch
        self.midi_lo, self.midi_hi = (float(v) for v in preset.midi_range)
        self.note_range = preset.midi_range  # notes outside are folded in by octaves (control.fold_note)
        self.program_timbres = preset.program_timbres
        self.resampler = StreamResampler(sample_rate_in=self.sample_rate, sample_rate_out=self.cfg.sample_rate)
        factory = get_vocoder(vocoder)
        # Band extension above the model's band where the preset has band profiles and the
        # vocoder can play them (audiosym.timbre.band); presets without them sound as before.
        extra = ({"band_extension": True} if preset.has_band
                 and "band_extension" in inspect.signature(factory).parameters else {})
        self.vocoder = factory(self.cfg, sample_rate=self.sample_rate, ramp_samples=self.control_period,
                               n_harmonics=n_harmonics, n_bands=noise_bands, **extra)
        self.extends_band = bool(getattr(self.vocoder, "extends_band", False))
        self._band_rows = BandRows(preset.band)
        self._timbre_cache: dict[str, np.ndarray] = {}
        self._shift_cache: dict[str, float] = {}
        envelope_kernel(np.zeros(self.hold), self.hold, 0.5, 0.0)  # compile now, not in a callback
        self.voices = check_voices(voices)
        self._poly = Polyphony(self, self.voices) if mode == "synth" and self.voices > 1 else None
        self.pitch_follow = pitch_follow
        self.follower = follower_for(preset, pitch_follow, mode=mode, sample_rate=self.sample_rate)
        self._state = self.init_state()

    # ------------------------------------------------------------------ public API
    @property
    def state(self) -> EngineState:
        return self._state

    @state.setter
    def state(self, value: EngineState) -> None:
        self._state = value

    @property
    def latency_samples(self) -> int:
        """Samples from an onset (input onset in transfer mode, note-on in synth mode) to the
        output reaching half its final level: the fast path's real delay (no lookahead), plus
        the vocoder's own (0 for harmonic-plus-noise)."""
        if self.mode == "synth":
            return int(round(0.5 * self.adsr.attack_s * self.sample_rate)) + self.vocoder.latency_samples
        follower = int(round(np.log(2.0) / -np.log(self.env_alpha))) if self.env_alpha > 0 else 0
        return follower + self.vocoder.latency_samples

    @property
    def pitch_latency_samples(self) -> int:
        """Delay of the input-pitch pass-through (no note held): resampler group delay + half
        the analysis window (the short one with ``pitch_follow="fast"``) + one hop to complete a
        frame, at the device rate, plus the vocoder's; measured by tests/engine/test_pitch_follow.py."""
        model = self.resampler.delay_samples_out + (
            self.follower.delay_samples if self.follower else self.cfg.n_fft / 2 + self.cfg.hop_length)
        return int(round(model * self.sample_rate / self.cfg.sample_rate)) + self.vocoder.latency_samples

    @property
    def ignored_program_changes(self) -> int:
        """Program changes whose GM program no timbre of the preset has (ignored, counted)."""
        return self._state.control.ignored_programs

    @property
    def ignored_messages(self) -> int:
        """MIDI messages the engine does not play (sysex, clock, pressure, unknown controllers,
        malformed bytes): ignored, counted."""
        return self._state.control.ignored_messages

    @property
    def folded_notes(self) -> int:
        """Note-ons outside the preset's playable ``midi_range``, played in the nearest octave of
        the same pitch class inside it (:func:`audiosym.engine.control.fold_note`; counted)."""
        return self._state.control.folded_notes

    @property
    def active_voices(self) -> int:
        """Voices sounding now (synth mode; in mono 1 while the note or its release sounds)."""
        st = self._state
        return st.poly.active if st.poly is not None else int(self.mode == "synth" and st.adsr.stage != "idle")

    @property
    def block_ms(self) -> float | None:
        return None if self.block_size is None else 1000.0 * self.block_size / self.sample_rate

    def init_state(self) -> EngineState:
        c = self.preset.context_frames
        silence = np.full((max(c - 1, 0), self.cfg.n_bins), np.log(self.cfg.eps), dtype=np.float32)
        return EngineState(
            n_samples=0, control=ControlState(timbre=self.timbre), adsr=AdsrState(),
            env_history=np.zeros(self.hold - 1), env_zi=np.zeros(1), last_gain=0.0,
            resampler=self.resampler.init_state(), feature_state=init_state(self.cfg),
            frame_history=silence, input_latent=None, input_midi=None,
            f0_midi=float(np.clip(60.0, self.midi_lo, self.midi_hi)), dirty=False,
            synth=self.vocoder.init_state(), poly=self._poly.init_state() if self._poly else None,
            yin=self.follower.init_buffer() if self.follower else None, follow=Follow() if self.follower else None,
        )

    def reset(self) -> None:
        self._state = self.init_state()

    def panic(self) -> None:
        """Release everything at once (a 5 ms fade), as MIDI CC120 does."""
        self.process(np.zeros(1, np.float32), [(0, 0xB0, 120, 0)])

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()

    def process(self, audio_block: np.ndarray | int, midi_events: Iterable = ()) -> np.ndarray:
        """One block: ``audio_block [n]`` mono float (synth mode: an array or just ``n``) and
        MIDI events with offsets in ``[0, n)`` -> ``[n]`` float32 at the device rate."""
        out, self._state = self.step(audio_block, midi_events, self._state)
        return out

    def render(self, y: np.ndarray | int, midi_events: Iterable = ()) -> np.ndarray:
        """Whole signal from a fresh state in one pass (all encoder and decoder calls batched);
        equal to ``process`` over any blocking. Event offsets count from the signal start."""
        out, _ = self.step(y, midi_events, self.init_state())
        return out

    # ------------------------------------------------------------------ the pure step
    def step(self, audio_block: np.ndarray | int, midi_events: Iterable, state: EngineState
             ) -> tuple[np.ndarray, EngineState]:
        # No cyclic garbage collection inside a block: the step's temporaries (per-frame
        # requests, updates, control states) die by reference counting when it returns, but a
        # collection running meanwhile would promote them to the old generation, and every few
        # offline renders that triggers a full collection of the interpreter's heap (~250 k
        # objects with onnxruntime/scipy/numba loaded: ~0.1 s, a third of a 30 s render).
        # Live, it keeps collector pauses out of the audio callback. Re-enabled only if it was on.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._step(audio_block, midi_events, state)
        finally:
            if was_enabled:
                gc.enable()

    def _step(self, audio_block: np.ndarray | int, midi_events: Iterable, state: EngineState
              ) -> tuple[np.ndarray, EngineState]:
        x = as_block(audio_block, self.mode)
        n = len(x)
        events = as_events(midi_events, block_length=n)
        if self._poly is not None:
            y, poly_changes = self._poly.step(n, events, state)
            return y.astype(np.float32), replace(state, n_samples=state.n_samples + n, **poly_changes)
        changes: dict[str, Any] = {}
        level, encoded = None, []
        if self.mode == "transfer":
            level, changes["env_history"], changes["env_zi"] = input_level(
                x, state.env_history, state.env_zi, self.hold, self.env_alpha)
            offsets, windows, fast = self._frames(x, state, changes)
            encoded = self._encode(offsets, windows, events, state.control)
            if self.follower is not None:  # (offset, None, raw MIDI) of the short-window frames
                encoded += self.follower.run(*fast, events, state.control, self.program_timbres, self.note_range)
        f0, gain, requests = self._control(n, level, events, encoded, state, changes)
        updates = self._decode(requests)
        out, changes["synth"] = self.vocoder.run(f0, gain, updates, state.synth)
        state = replace(state, n_samples=state.n_samples + n, decodes=state.decodes + len(requests), **changes)
        return out.astype(np.float32), state

    def _frames(self, x: np.ndarray, state: EngineState, changes: dict) -> tuple[np.ndarray, np.ndarray, Cut]:
        """Resample and featurise -> (ready offsets [k], encoder windows [k, C, n_bins]) of the
        feature frames this block completes, and the short window's (Cut; none without the follower)."""
        n16_before = state.resampler.n_out
        y16, ready, changes["resampler"] = self.resampler.step(x, state.resampler)
        fast: Cut = (np.zeros(0, np.int64), (y16, np.zeros(0, np.int64)))
        if self.follower is not None:
            ends, stream, changes["yin"] = self.follower.frames(y16, state.yin)
            fast = (ready[ends], (stream, ends))
        frames, changes["feature_state"] = features_step(y16, state.feature_state, self.cfg)
        k, c = len(frames), self.preset.context_frames
        if k == 0:
            return np.zeros(0, np.int64), np.zeros((0, c, self.cfg.n_bins), np.float32), fast
        # Frame t (0-based, absolute) ends at model-rate sample (t + 1) * hop - 1.
        last_sample = (np.arange(state.frames, state.frames + k) + 1) * self.cfg.hop_length - 1 - n16_before
        stack = np.concatenate([state.frame_history, frames]).astype(np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(stack, c, axis=0).transpose(0, 2, 1)
        changes["frame_history"] = stack[len(stack) - (c - 1):] if c > 1 else state.frame_history
        changes["frames"] = state.frames + k
        return ready[last_sample], windows, fast

    def _encode(self, offsets: np.ndarray, windows: np.ndarray, events: list, control: ControlState) -> list:
        """Run the encoder (one batched call) on the frames whose pitch can be heard: those that
        arrive while no note is held (a held note sets the pitch; timbre comes from the preset).
        -> [(offset, pitch latent, midi)]."""
        needed = unheld(offsets, events, control, self.program_timbres, self.note_range)
        if not needed:
            return []
        out = self.preset.encode(np.ascontiguousarray(windows[needed]))
        latents = np.asarray(out[self.pitch_name])[:, -1, :]  # [len(needed), d]
        midi = np.asarray(self.preset.input_midi(out), dtype=np.float64)[:, -1]
        return [(int(offsets[i]), latents[j], float(midi[j])) for j, i in enumerate(needed)]

    def _timbre_vector(self, control: ControlState) -> np.ndarray:
        def vec(name: str) -> np.ndarray:
            if name not in self._timbre_cache:
                self._timbre_cache[name] = np.asarray(self.preset.timbre_vector(name), dtype=np.float32)
            return self._timbre_cache[name]

        v = vec(control.timbre)
        if self.morph_timbre is not None and control.mod > 0:
            v = (1 - control.mod) * v + control.mod * vec(self.morph_timbre)
        return v

    def _control(self, n: int, level: np.ndarray | None, events: list, encoded: list, state: EngineState,
                 changes: dict):
        """Walk the block's change points (MIDI events, encoder frames, control-grid ticks) in
        order -> per-sample ``f0_midi [n]``, ``gain [n]``, decode requests, new state."""
        f0 = np.empty(n)
        gain = np.empty(n)
        synth = self.mode == "synth"
        period = self.control_period
        at: dict[int, list] = {}
        for ev in events:
            at.setdefault(ev.offset, []).append(("midi", ev.data))
        for off, latent, midi in encoded:
            at.setdefault(int(off), []).append(("enc", (latent, midi)) if latent is not None else ("fast", midi))
        points = sorted(at)
        cs, adsr, f0_cur, dirty = state.control, state.adsr, state.f0_midi, state.dirty
        note_env = state.note_env
        timbre_dynamics = not synth and self.dynamics == "timbre"
        latent_in, midi_in, fol = state.input_latent, state.input_midi, state.follow
        requests: list[dict] = []
        # Control-grid ticks only matter while a decode is pending (``dirty``): visit the next
        # tick then, and none otherwise (between events nothing else changes), so the walk costs
        # O(events), not O(ticks). A pending decode that meets a silent tick (synth mode, ADSR
        # idle) waits for the next event: an idle ADSR stays idle until a gate event.
        tick = (-state.n_samples) % period if dirty else n
        prev, pi = 0, 0
        while True:
            event_p = points[pi] if pi < len(points) else n
            p = min(event_p, tick)
            f0[prev:p] = f0_cur - self._basis_shift(cs)
            if synth:
                env, adsr = adsr_run(adsr, p - prev, self.adsr, self.sample_rate)
                gain[prev:p] = env * self.synth_level
            elif note_env is None:
                assert level is not None  # transfer mode always has an input level
                gain[prev:p] = level[prev:p]
            else:
                assert level is not None
                note_env = note_gain(note_env, level[prev:p], state.n_samples + prev, gain[prev:p],
                                     self.release_samples)
            if p == n:
                break
            gain_before = gain[p - 1] if p > 0 else state.last_gain
            immediate = False
            for kind, payload in at[p] if p == event_p else ():
                if kind == "midi":
                    cs, change = apply_message(cs, payload, self.program_timbres, self.note_range)
                    if change.gate is not None:
                        adsr = adsr_gate(adsr, change.gate, self.adsr, self.sample_rate)
                        if timbre_dynamics:
                            note_env = self._note_curves.gate(note_env, change.gate, cs.timbre, cs.note,
                                                              state.n_samples + p, gain_before)
                        immediate |= change.gate in ("on", "legato")
                        if change.gate in ("off", "panic") and not synth:
                            # The input's pitch takes over at its next frame (frames are not
                            # encoded while a note is held); until then the note sounds on.
                            latent_in = midi_in = None
                            fol = fol and Follow()
                    dirty |= change.spectrum
                else:
                    audible = cs.note is None and not releasing(note_env)
                    if fol is None or self.follower is None:
                        (latent_in, midi_in), dirty = payload, dirty or audible
                    else:
                        fol, heard, decode = self.follower.update(fol, kind, payload, state.n_samples + p, audible)
                        midi_in, latent_in = heard if heard is not None else (midi_in, latent_in)
                        dirty |= decode
            if p == event_p:
                pi += 1
            # The note that sounds: the held one; else (synth release tail, a released note's
            # envelope (dynamics="timbre"), or transfer mode before the input's next frame) the
            # last one; else the input's own pitch.
            note = (cs.note if cs.note is not None or not (synth or latent_in is None or releasing(note_env))
                    else cs.last_note)
            if note is not None:
                f0_cur = float(note) + cs.bend * self.bend_range_semitones
            elif midi_in is not None and np.isfinite(midi_in):
                f0_cur = float(midi_in)
            sounding = not synth or adsr.stage != "idle"
            on_tick = (state.n_samples + p) % period == 0
            if immediate or (dirty and sounding and on_tick):
                requests.append(self._request(p, cs, note, latent_in, f0_cur, gain_before <= 0.0))
                dirty = False
            if not dirty or (on_tick and not sounding):
                tick = n
            else:
                tick = p + 1 + (-(state.n_samples + p + 1)) % period
            prev = p
        changes.update(control=cs, adsr=adsr, f0_midi=f0_cur, dirty=dirty, input_latent=latent_in, note_env=note_env,
                       input_midi=midi_in, follow=fol, last_gain=float(gain[-1]) if n else state.last_gain)
        return f0, gain, requests

    def _request(self, offset: int, cs: ControlState, note: int | None, latent_in, f0_midi: float,
                 jump: bool) -> dict:
        scale = (cs.velocity / 127.0) ** 2  # velocity -> gain as in DLS: 40 log10(v / 127) dB
        if note is not None:
            midi = f0_midi if self.linear else float(note)
            pitch = self.preset.midi_to_latent(float(np.clip(midi, self.midi_lo, self.midi_hi)))
        elif latent_in is not None:
            pitch, scale = latent_in, 1.0
        else:  # transfer mode before any note or encoder frame: nothing to sound yet
            pitch, scale = self.preset.midi_to_latent(float(np.clip(f0_midi, self.midi_lo, self.midi_hi))), 0.0
        f0 = f0_midi - self._basis_shift(cs)
        return {"offset": offset, "pitch": np.asarray(pitch, np.float32).reshape(-1),
                "timbre": self._timbre_vector(cs), "f0": f0, "scale": scale,
                "jump": jump, "band": self._band_rows.row(cs.timbre, f0_midi, self.morph_timbre, cs.mod)
                if self.extends_band else None}

    def _basis_shift(self, cs: ControlState) -> float:
        """12 (semitones) when the sounding timbre's partials are the harmonics of f0 / 2 (the
        preset says so: an organ's 16' stop), else 0: oscillators and spectrum reader then work
        on the f0 / 2 series, which holds both the note's harmonics and the sub-octave ones."""
        name = self.morph_timbre if self.morph_timbre is not None and cs.mod > 0.5 else cs.timbre
        if name not in self._shift_cache:
            self._shift_cache[name] = 12.0 if self.preset.subharmonic(name) else 0.0
        return self._shift_cache[name]

    def _decode(self, requests: list) -> list:
        if not requests:
            return []
        pitch = np.stack([r["pitch"] for r in requests]).astype(np.float32)[:, None, :]
        timbre = np.stack([r["timbre"] for r in requests]).astype(np.float32)[:, None, :]
        logmag = np.asarray(self.preset.decode(**{self.pitch_name: pitch, self.timbre_name: timbre}))[:, -1, :]
        if self.extends_band:  # a vocoder that says it extends the band takes band rows
            read_bands: Any = self.vocoder.read
            return read_bands(logmag, np.array([r["f0"] for r in requests]),
                                     offsets=[r["offset"] for r in requests], scales=[r["scale"] for r in requests],
                                     jumps=[r["jump"] for r in requests], bands=[r["band"] for r in requests])
        return self.vocoder.read(logmag, np.array([r["f0"] for r in requests]), offsets=[r["offset"] for r in requests],
                                 scales=[r["scale"] for r in requests], jumps=[r["jump"] for r in requests])
