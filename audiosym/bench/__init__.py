"""Benchmarks with measured numbers, as library functions that take keyword options and return
one JSON-ready dict each (``audiosym bench ...`` parses arguments and prints them).

- :func:`audiosym.bench.engine.bench_engine`: the real-time engine's block compute, input and
  note-on latency, pitch error;
- :func:`audiosym.bench.vocoder.bench_vocoder`: harmonic+noise vs RTPGHI vs Griffin-Lim;
- :func:`audiosym.bench.speed.bench_resynth`, :func:`train.core.bench.bench_train`:
  offline resynthesis realtime factor, training steps per second.

Progress goes to stderr (:func:`audiosym.bench.common.log`).
"""
