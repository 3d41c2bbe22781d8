"""Group checking (DataGen): streaming near-duplicate removal over a whole run. Duplicates go to
duplicates.jsonl with the id they duplicate, distinct instances are kept, the count is in stats.json,
and a resumed run checks new instances against the kept ones of earlier invocations."""

import json
import re

import dspy
import numpy as np
import pytest

from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.runner import RunSettings, run
from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from targen_dspy.text.vectors import NearDuplicateFilter
from tests.engine.test_runner import lines, rte_lm


class FakeEncoder:
    """A one-hot vector per distinct text, digits ignored: two RTE records are duplicates exactly when
    their premises differ only in a number ("Sport seed number 0." and "Sport seed number 1.") and their
    hypotheses are equal, and any other pair has a cosine of at most 0.5."""

    def __init__(self):
        self.index: dict[str, int] = {}
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts += texts
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            key = re.sub(r"\d", "", text).strip().lower()
            vectors[row, self.index.setdefault(key, len(self.index))] = 1.0
        return vectors


def generate(spec, path, n, embed, seeds_per_context=2):
    """Like test_runner.generate, with group checking."""
    with dspy.context(lm=rte_lm(), adapter=dspy.JSONAdapter()):
        return run(
            TarGEN(spec),
            RunDirectory(path),
            RunSettings(n=n, seeds_per_context=seeds_per_context, dedup=0.9),
            {"generator": "dummy"},
            progress=False,
            embed=embed,
        ).to_json()


def test_run_moves_duplicates_aside_and_counts_them(rte, tmp_path):
    stats = generate(rte, tmp_path, 12, FakeEncoder().embed)
    kept = lines(tmp_path)
    duplicates = [json.loads(line) for line in (tmp_path / "duplicates.jsonl").read_text().splitlines()]
    # 6 seeds, two per context ("Sport seed number 0.", "Sport seed number 1."), one hypothesis per label:
    # the second seed of each context repeats the first for both labels
    assert sorted(r["id"] for r in kept) == [f"c{c}-s0-l{label}" for c in range(3) for label in range(2)]
    assert {d["id"]: d["duplicate_of"] for d in duplicates} == {
        f"c{c}-s1-l{label}": f"c{c}-s0-l{label}" for c in range(3) for label in range(2)
    }
    assert all(d["cosine"] == pytest.approx(1.0) and d["hypothesis"] for d in duplicates)
    assert stats["duplicates_removed"] == 6 and stats["instances"] == 6
    assert json.loads((tmp_path / "manifest.json").read_text())["settings"]["dedup"] == 0.9


def test_without_duplicates_nothing_is_removed(rte, tmp_path):
    stats = generate(rte, tmp_path, 6, FakeEncoder().embed, seeds_per_context=1)
    assert stats["duplicates_removed"] == 0 and len(lines(tmp_path)) == 6  # one seed per context
    assert not (tmp_path / "duplicates.jsonl").exists()


def test_resume_checks_new_instances_against_the_kept_ones(rte, tmp_path):
    first = generate(rte, tmp_path, 6, FakeEncoder().embed)
    first_ids = {r["id"] for r in lines(tmp_path)}
    assert first["duplicates_removed"] == 2  # two contexts so far: c0's second seed repeats its first
    encoder = FakeEncoder()  # a new process: it knows nothing of the first invocation's vectors
    second = generate(rte, tmp_path, 12, encoder.embed)
    kept, duplicates = lines(tmp_path), (tmp_path / "duplicates.jsonl").read_text().splitlines()
    assert second["duplicates_removed"] == 6 and len(kept) == 6 and len(duplicates) == 6
    of = {json.loads(d)["id"]: json.loads(d)["duplicate_of"] for d in duplicates}
    assert of["c1-s1-l0"] == "c1-s0-l0" and "c1-s0-l0" in first_ids  # kept by the first invocation
    assert {r["premise"] for r in kept} <= set(encoder.texts)  # re-embedded on resume
    third = generate(rte, tmp_path, 12, FakeEncoder().embed)
    assert third["this_invocation"]["calls"] == 0 and third["duplicates_removed"] == 6  # duplicates are done


def test_dedup_needs_an_embedding_function(rte, tmp_path):
    with pytest.raises(RunError, match="needs sentence embeddings"):
        run(TarGEN(rte), RunDirectory(tmp_path), RunSettings(n=2, dedup=0.9), {}, progress=False)
    with pytest.raises(RunError, match="cosine in"):
        RunSettings(n=2, dedup=1.5)


def test_real_minilm_keeps_paraphrase_once_and_distinct_sentences(encoder):
    group = NearDuplicateFilter(encoder.embed, threshold=0.9, fields=["text"])
    texts = (
        "The football club won the national cup in 1999.",
        "The football club won the national cup in 1999!",
        "Shares of the bank fell sharply after the report.",
        "A new species of frog was found in the rainforest.",
    )
    verdicts = [group.check({"id": f"r{i}", "text": text}) for i, text in enumerate(texts)]
    assert verdicts[0] is None and verdicts[1].of == "r0" and verdicts[1].cosine >= 0.9
    assert verdicts[2] is None and verdicts[3] is None and group.ids == ["r0", "r2", "r3"]


def test_real_minilm_memory_stays_bounded_once_its_memo_is_full(encoder, monkeypatch):
    from targen_dspy.analysis import embeddings

    monkeypatch.setattr(embeddings, "MEMO_LIMIT", 0)
    kept = len(encoder._memo)
    first = encoder.embed(["A text seen once in a long run.", "Another one."])
    assert len(encoder._memo) == kept  # encoded, not remembered
    assert np.allclose(first[0], encoder.embed(["A text seen once in a long run."])[0], atol=1e-5)
