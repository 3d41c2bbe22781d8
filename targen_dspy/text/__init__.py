"""A record's text and its vectors, shared by generation (group checking, self-reference, rejecting
text that is not task-shaped) and analysis: which fields are text (`fields`), whether a text is
task-shaped (`shape`), and unit embeddings and near-duplicates (`vectors`, which imports numpy, so
generation code imports it only when it needs vectors)."""
