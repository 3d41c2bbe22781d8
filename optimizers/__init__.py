"""Metrics and teleprompter wiring that tune the TarGEN program's prompts from a small gold set."""
