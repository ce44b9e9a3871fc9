"""Where readings go: the output stage (``base``: the Sink protocol, one bounded queue and thread per sink)
and one module per output (OSC, CSV, MIDI, the meter, the readout)."""
