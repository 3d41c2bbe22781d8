"""A compiled program.json loaded with optional steps switched on: the compiled prompts are kept, and
the optional steps, which were not compiled, get their hand-written ones."""

from targen_dspy.optimizers.program_file import load_compiled, save_compiled
from targen_dspy.program import TarGEN
from targen_dspy.program.options import GenerationOptions


def test_optional_steps_load_beside_compiled_prompts(rte, tmp_path):
    compiled = TarGEN(rte)
    tuned = compiled.generate.write.signature.with_instructions("Tuned instruction.")
    compiled.generate.write.signature = tuned
    path = tmp_path / "program.json"
    save_compiled(compiled, path, {})
    loaded = load_compiled(rte, path, GenerationOptions(reflect_rounds=1, harder=True))
    assert loaded.generate.write.signature.instructions == "Tuned instruction."
    hand_written = TarGEN(rte, GenerationOptions(reflect_rounds=1, harder=True))
    for name in ("reflect.critique", "reflect.revise", "harden.rewrite"):
        mine = dict(loaded.named_predictors())[name].signature
        assert mine.instructions == dict(hand_written.named_predictors())[name].signature.instructions
    assert load_compiled(rte, path).generate.write.signature.instructions == "Tuned instruction."
