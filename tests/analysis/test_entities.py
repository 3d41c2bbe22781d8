"""Named-entity bias: the divergence on known values, and spaCy's real en_core_web_sm on hand-written
sets (the `bias` extra)."""

import pytest

from targen_dspy.analysis.entities import CATEGORIES, count_entities, entity_bias, js_divergence, load_ner
from targen_dspy.analysis.report import write_report
from targen_dspy.analysis.summary import Dataset, analyse
from tests.analysis.test_report import run_records

PLACES = [
    "The delegation flew from Paris to Berlin on Monday.",
    "Farmers in Kenya sell coffee to buyers in Italy.",
    "Tourists crowded the streets of Tokyo and Kyoto.",
    "The summit in Madrid was moved to Lisbon.",
]
PEOPLE = [
    "Angela Merkel spoke with Barack Obama about the treaty.",
    "Google hired Maria Lopez as its new lawyer.",
    "The French chef met Buddhist monks at the Microsoft office.",
    "John Smith thanked Sarah Connor for the help.",
]


@pytest.fixture(scope="module")
def recognize():
    found = load_ner()
    if found is None:
        pytest.skip('needs spaCy and en_core_web_sm: pip install -e ".[bias]"')
    return found


def test_jensen_shannon_divergence_on_known_values():
    assert js_divergence([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(0.0)  # counts or shares alike
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(0.3113, abs=1e-4)
    assert js_divergence([0, 0], [1, 1]) is None


def test_the_model_finds_the_obvious_entities(recognize):
    places = count_entities(PLACES, recognize)
    assert places.documents == 4
    assert {"paris", "berlin", "kenya", "tokyo"} <= set(places.names["GPE"])
    assert places.mentions["GPE"] >= 7 and places.mentions["PERSON"] == 0
    people = count_entities(PEOPLE, recognize)
    assert {"angela merkel", "barack obama", "john smith"} <= set(people.names["PERSON"])
    assert "google" in people.names["ORG"] and {"french", "buddhist"} <= set(people.names["NORP"])
    assert sum(people.shares()) == pytest.approx(1.0)


def test_sets_about_places_and_people_diverge(recognize):
    bias = entity_bias([("data", PLACES), ("reference", PEOPLE)], recognize)
    same = entity_bias([("data", PLACES), ("reference", list(reversed(PLACES)))], recognize)
    assert bias.category_divergence > 0.3 and same.category_divergence == pytest.approx(0.0)
    assert bias.name_divergence("GPE") is None  # no place named in the people set
    mixed = entity_bias([("data", PLACES[:2]), ("reference", PLACES[2:])], recognize)
    assert mixed.name_divergence("GPE") == pytest.approx(1.0)  # no place named in both
    assert entity_bias([("data", PLACES)], recognize).category_divergence is None


def test_the_report_has_the_entity_section_or_says_how_to_get_it(tmp_path, encoder, recognize):
    records = run_records()
    for record, text in zip(records, PLACES * 7, strict=False):
        record["hypothesis"] = text
    analysis = analyse(Dataset("data", tmp_path / "data.jsonl", records), None, encoder)
    texts = [("data", [r["premise"] + "\n" + r["hypothesis"] for r in records])]
    report = write_report(analysis, tmp_path / "with", entity_bias(texts, recognize)).read_text()
    assert "## Named entities" in report and "![named entities](entities.png)" in report
    assert (tmp_path / "with" / "entities.png").read_bytes().startswith(b"\x89PNG")
    assert all(f"| {category} |" in report for category in CATEGORIES) and "paris" in report
    without = write_report(analysis, tmp_path / "without").read_text()
    assert 'needs spaCy and its English model: `pip install -e ".[bias]"`' in without
    assert not (tmp_path / "without" / "entities.png").exists()
