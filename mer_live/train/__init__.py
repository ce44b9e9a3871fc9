"""Training, evaluation and export of the A2Mid2E models. The only place that imports torch."""
