"""The real-time engine: state, MIDI control, dynamics, and the vocoders behind one protocol."""
