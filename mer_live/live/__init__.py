"""The running daemon: sound card capture in a child process, the shared-memory ring, sources, the worker
thread, the smoother, and the wiring of them all."""
