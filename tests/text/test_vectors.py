"""Records as unit vectors and streaming near-duplicate detection, on vectors with known geometry."""

import numpy as np
import pytest

from targen_dspy.text.vectors import NearDuplicateFilter, record_vectors, unit_rows
from tests.engine.test_dedup import FakeEncoder


def table_embed(table):
    return lambda texts: np.array([table[text] for text in texts], dtype=np.float32)


def records(*texts):
    return [{"id": f"r{i}", "text": text} for i, text in enumerate(texts)]


def test_filter_keeps_distinct_and_reports_what_a_duplicate_duplicates():
    vectors = {"a": [1, 0, 0], "b": [0.8, 0.6, 0], "c": [0, 0, 1], "d": [0, 0.6, 0.8], "e": [0, 3, 0]}
    group = NearDuplicateFilter(table_embed(vectors), threshold=0.8, fields=["text"])
    verdicts = [group.check(record) for record in records("a", "b", "c", "d", "e")]
    assert verdicts[0] is None and verdicts[2] is None  # the first of each group is kept
    assert (verdicts[1].of, verdicts[1].cosine) == ("r0", 0.8)  # a cosine at the threshold is a duplicate
    assert (verdicts[3].of, verdicts[3].cosine) == ("r2", 0.8)
    assert verdicts[4] is None  # 0.6 to b would be too, but b was not kept; vectors need not be unit
    assert group.ids == ["r0", "r2", "r4"]


def test_filter_grows_past_its_first_capacity_and_averages_fields():
    group = NearDuplicateFilter(FakeEncoder().embed, threshold=0.9, fields=["premise", "hypothesis"])
    kept = [{"id": str(i), "premise": f"P{'x' * i}", "hypothesis": "H"} for i in range(40)]
    assert all(group.check(record) is None for record in kept)  # premises differ: cosine 0.5
    assert len(group) == 40
    again = group.check({"id": "new", "premise": "Pxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "hypothesis": "H"})
    assert again.of == "35" and again.cosine == pytest.approx(1.0)


def test_filter_loads_kept_records_in_chunks_without_checking_them():
    encoder = FakeEncoder()
    group = NearDuplicateFilter(encoder.embed, threshold=0.9, fields=["text"])
    group.load(records(*(["same"] * 300)))
    assert len(group) == 300 and len(encoder.texts) == 300
    assert group.check({"id": "x", "text": "same"}).of == "r0"


def test_a_records_vector_is_the_mean_of_its_fields_unit_vectors_made_unit():
    table = {"a": [3.0, 0.0], "b": [0.0, 0.5], "c": [0.0, 0.0]}
    vectors = record_vectors([{"x": "a", "y": "b"}, {"x": "c", "y": "b"}], ["x", "y"], table_embed(table))
    assert np.allclose(vectors, [[2**-0.5, 2**-0.5], [0.0, 1.0]])  # lengths do not weigh; zero stays zero
    assert np.allclose(unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0.0, 0.0]])
