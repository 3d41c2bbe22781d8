"""The TarGEN program: one DSPy module per step, composed by `TarGEN`."""

from targen_dspy.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "contexts": ("ContextGenerator",),
        "correction": ("SelfCorrector",),
        "instances": ("InstanceGenerator",),
        "seeds": ("SeedGenerator",),
        "targen": ("TarGEN",),
    },
)
