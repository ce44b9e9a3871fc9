"""The vocabulary every stage shares: label names and units, the Reading, addresses, exit codes, the
command-line parser with one-line errors, rate-limited logging. Standard library and numpy only."""
