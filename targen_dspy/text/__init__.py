"""A record's text and its vectors, shared by generation (group checking, self-reference) and analysis:
which fields are text (`fields`), and unit embeddings and near-duplicates (`vectors`, which imports numpy,
so generation code imports it only when it needs vectors)."""
