"""Vocoders: decoded magnitude frames -> audio (harmonic-plus-noise; RTPGHI phase reconstruction)."""
