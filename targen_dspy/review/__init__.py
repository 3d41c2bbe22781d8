"""`targen review`: a local page to read a run and annotate a sample of it, with the agreement of the
reviewer's labels with the run's (an estimate of its label noise)."""
