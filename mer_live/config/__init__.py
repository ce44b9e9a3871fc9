"""The daemon's settings: one typed section per stage and per output, read from TOML and the command line
(CLI > TOML > defaults)."""
