"""Timbres beyond a named vector: stored match corrections, note envelopes, timbres measured from recordings."""
