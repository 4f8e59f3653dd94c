"""Audio files, MIDI files and live devices (sounddevice, python-rtmidi)."""
