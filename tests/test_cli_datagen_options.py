"""`targen generate` with the DataGen options, against a real OpenAI-compatible HTTP server: the flags
reach the program and the engine, and the manifest records them."""

import json

from targen_dspy.backends.fake_openai import FakeOpenAI
from targen_dspy.cli import main


def test_flags_switch_the_steps_on_and_are_recorded(tmp_path, capsys):
    with FakeOpenAI() as server:
        code = main(
            [
                "generate",
                "rte",
                "-n",
                "4",
                "-o",
                str(tmp_path),
                "--model",
                "openai/served",
                "--api-base",
                server.api_base,
                "--harder",
                "--reflect",
                "2",
                "--constraint",
                "No brand names.",
                "--constraint",
                "Hypotheses under 20 words.",
                "-q",
            ]
        )
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["options"] == {
        "constraints": ["No brand names.", "Hypotheses under 20 words."],
        "reflect_rounds": 2,
        "harder": True,
    }
    assert manifest["settings"]["dedup"] is None
    records = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    # the server writes a new text for every field it is asked for: each hypothesis is rewritten
    assert len(records) == 4 and all(r["before_harder"]["hypothesis"] != r["hypothesis"] for r in records)
    assert json.loads((tmp_path / "stats.json").read_text())["made_harder"] == 4


def test_bad_option_values_are_one_line_errors(tmp_path, capsys):
    for args, message in (
        (["--reflect", "-1"], "--reflect is a number of rounds"),
        (["--dedup", "1.5"], "--dedup is a cosine in (0, 1]"),
        (["--constraint", " "], "--constraint needs a rule"),
    ):
        assert main(["generate", "rte", "-o", str(tmp_path / "run"), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
