"""The OSC control port: query and adjust the running daemon during a show."""
