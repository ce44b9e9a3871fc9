"""mer-live: real-time music emotion recognition with mid-level explanations."""

__version__ = "0.1.0"
