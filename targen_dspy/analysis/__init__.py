"""Judging a dataset, synthetic or real: `targen analyze` and the downstream yardstick.

- `summary.analyse` + `report.write_report`: labels, lexical and semantic diversity, difficulty (PVI)
  and the self-correction confusion matrix, as report.md and PNG plots.
- `downstream.evaluate`: accuracy on a real test set of one fixed classifier trained on a dataset.
- `embeddings.load_encoder`: all-MiniLM-L6-v2, offline, from the `embeddings` extra.
"""
