"""Guided domain randomization: algorithms that change the distribution while policies train.

``base.Guide`` is the hook the trainer calls; ``base.SpecSource`` is the fixed-spec guide used
when only a spec is given.
"""

from domrand.guided.base import Guide, SpecSource

__all__ = ["Guide", "SpecSource"]
