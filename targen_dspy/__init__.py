"""targen-dspy: TarGEN (seedless, label-constrained, self-corrected synthetic data) as a DSPy program."""
