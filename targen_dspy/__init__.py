"""targen-dspy: TarGEN (seedless, label-constrained, self-corrected synthetic data) as a DSPy program."""

import os

# litellm fetches its price table from the internet at import unless told to use the bundled copy;
# offline that costs seconds of retries per process.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
