"""Audio -> spectrogram frames and windows for the models (numpy only, no I/O)."""
