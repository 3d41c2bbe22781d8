"""Retrieval-grounded validation: passages of a corpus directory found by BM25, a judge of the instance's
facts against them; a contradicted instance is dropped into rejected.jsonl, a supported one is kept with
its verdict; a missing or empty corpus is a one-line error."""

import json

import dspy
import pytest

from targen_dspy.cli import main
from targen_dspy.engine.rundir import RunDirectory
from targen_dspy.engine.runner import RunSettings, run
from targen_dspy.errors import RunError
from targen_dspy.program import TarGEN
from targen_dspy.program.grounding import NOTHING_FOUND, GroundingJudge
from targen_dspy.program.options import GenerationOptions
from targen_dspy.verify.retrieval import Corpus, passages_of
from tests.conftest import json_lm

TOWER = "The Eiffel Tower stands in Paris. It was completed in 1889 for the World's Fair."
BRIDGE = "The Golden Gate Bridge spans the strait between San Francisco and Marin County."


@pytest.fixture
def corpus_dir(tmp_path):
    folder = tmp_path / "docs"
    (folder / "cities").mkdir(parents=True)
    (folder / "cities" / "paris.md").write_text(f"# Paris\n\n{TOWER}\n", encoding="utf-8")
    (folder / "bridges.txt").write_text(BRIDGE + "\n", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG")  # not text: ignored
    return folder


def test_bm25_finds_the_passage_that_shares_the_rare_words(corpus_dir):
    corpus = Corpus.load(corpus_dir)
    assert sorted(p.id for p in corpus.passages) == ["bridges.txt#0", "cities/paris.md#0"]
    assert [p.id for p in corpus.search("When was the Eiffel Tower completed?", k=1)] == ["cities/paris.md#0"]
    assert [p.id for p in corpus.search("a bridge to Marin", k=3)] == ["bridges.txt#0"]
    assert corpus.search("quantum chromodynamics") == []


def test_long_text_is_cut_into_passages_of_whole_paragraphs():
    text = "\n\n".join(["one two three"] * 3 + ["word " * 25])
    passages = passages_of(text, "f.md", words=10)
    assert [len(p.text.split()) for p in passages] == [9, 10, 10, 5]
    assert [p.id for p in passages] == ["f.md#0", "f.md#1", "f.md#2", "f.md#3"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "nowhere", "no such directory"),
        (lambda d: d, "has no .txt"),
        (lambda d: (d / "notes.md").write_text("\n \n") and d, "are empty"),
        (lambda d: (d / "notes.md").write_text("x") and d / "notes.md", "is a file"),
    ],
)
def test_an_unusable_corpus_is_a_clear_error(tmp_path, make, message):
    with pytest.raises(RunError, match=message):
        Corpus.load(make(tmp_path))


def test_a_missing_corpus_on_the_command_line_is_one_line_and_exit_code_2(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (tmp_path / "missing", empty):
        assert main(["generate", "rte", "-n", "2", "-o", str(tmp_path / "run"), "--corpus", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("targen: --corpus") and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def judge_lm():
    """The judge contradicts the premise that dates the tower to 1925, supports the one in Paris."""
    return json_lm(
        {
            "1925.": {"reason": "paris.md#0 says 1889.", "verdict": "contradicted"},
            "Paris.": {"reason": "paris.md#0 says it stands in Paris.", "verdict": "supported"},
        }
    )


def test_the_judge_sees_the_retrieved_passages_and_decides(rte, corpus_dir):
    judge = GroundingJudge(rte, Corpus.load(corpus_dir), k=2)
    lm = judge_lm()
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        wrong = judge(premise="The Eiffel Tower was completed in 1925.", hypothesis="The tower is old.")
        right = judge(premise="The Eiffel Tower stands in Paris.", hypothesis="The tower is in France.")
        unrelated = judge(premise="Zebras graze.", hypothesis="Zebras eat.")
    assert (
        wrong.grounding["verdict"] == "contradicted" and wrong.grounding["passages"][0] == "cities/paris.md#0"
    )
    assert wrong.rejected == {"by": "corpus", "reason": "paris.md#0 says 1889."}
    assert right.grounding["verdict"] == "supported" and right.rejected is None
    assert unrelated.grounding == {"verdict": "not_found", "reason": NOTHING_FOUND, "passages": []}
    assert len(lm.history) == 2  # nothing retrieved, no call
    prompt = lm.history[0]["messages"][-1]["content"]
    assert "[cities/paris.md#0] # Paris The Eiffel Tower" in prompt and TOWER in prompt
    assert lm.history[0]["kwargs"]["temperature"] == 0.0


def test_the_engine_drops_the_contradicted_instance_and_keeps_the_supported_one(rte, corpus_dir, tmp_path):
    premises = ["The Eiffel Tower was completed in 1925.", "The Eiffel Tower stands in Paris."]
    lm = json_lm(
        {
            "## context_kind ##": {"contexts": ["Landmarks"]},
            "## seed_kind ##": {"seeds": premises},
            "## target_label ##": {"hypothesis": "The tower is a landmark."},
            "## proposed_label ## ]]\nentailment": {"reasoning": "ok", "corrected_label": "entailment"},
            "## proposed_label ## ]]\nnot_entailment": {
                "reasoning": "ok",
                "corrected_label": "not_entailment",
            },
            **judge_lm().answers,
        }
    )
    program = TarGEN(rte, GenerationOptions(corpus=corpus_dir))
    settings = RunSettings(n=4, seeds_per_context=2)  # two seeds, each with both labels
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        stats = run(program, RunDirectory(tmp_path), settings, {}, progress=False).to_json()
    kept = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert [r["premise"] for r in kept] == [premises[1]] * 2
    for record in kept:
        assert record["grounding"]["verdict"] == "supported"
        assert record["grounding"]["passages"][0] == "cities/paris.md#0"
    dropped = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["premise"] for r in dropped] == [premises[0]] * 2
    for record in dropped:
        assert record["grounding"]["verdict"] == "contradicted"
        assert record["rejected"] == {"by": "corpus", "reason": "paris.md#0 says 1889."}
    assert stats["instances"] == 2 and stats["rejected_by"] == {"corpus": 2} and stats["failed_slots"] == 0
    assert stats["grounding"] == {"supported": 2}
