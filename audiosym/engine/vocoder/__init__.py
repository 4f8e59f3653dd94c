"""Vocoders: decoded magnitude frames -> audio, behind one protocol, chosen by name.

:class:`audiosym.engine.vocoder.base.Vocoder` is what the engine needs; ``"harmonic"``
(harmonic-plus-noise, :mod:`audiosym.engine.vocoder.harmonic`, the default: exact pitch, no added
latency) and ``"rtpghi"`` (phase reconstruction, :mod:`audiosym.engine.vocoder.rtpghi`: the
decoder's whole spectrum, ~70 ms later) implement it. A new vocoder is one module and one line in
:data:`VOCODERS`. Their numba kernels live in :mod:`audiosym.engine.vocoder.kernels`.
"""

from __future__ import annotations

from audiosym.engine.vocoder.base import Vocoder, VocoderFactory
from audiosym.engine.vocoder.harmonic import HarmonicNoiseVocoder
from audiosym.engine.vocoder.rtpghi import RTPGHIVocoder
from audiosym.errors import ParameterError

#: Vocoder name -> its factory (the ``vocoder`` argument of :class:`audiosym.engine.engine.Engine`).
VOCODERS: dict[str, VocoderFactory] = {
    "harmonic": HarmonicNoiseVocoder,
    "rtpghi": RTPGHIVocoder,
}


def get_vocoder(name: str) -> VocoderFactory:
    """The factory registered as ``name``; ParameterError naming the choices otherwise."""
    if name not in VOCODERS:
        raise ParameterError(f"vocoder={name!r} is not one of {sorted(VOCODERS)}")
    return VOCODERS[name]


__all__ = ["VOCODERS", "Vocoder", "VocoderFactory", "get_vocoder"]
