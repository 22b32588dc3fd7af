"""What a privileged critic sees: the episode's domain, as offsets from the nominal values.

An asymmetric actor-critic (Pinto et al. 2018; Peng et al. 2018's "omniscient critic" for
dynamics randomization) gives the value function information the policy does not get: here, the
knob values of the domain the episode runs in. The policy must infer the dynamics from its
history; the critic is told them, so its advantages do not mix up "this action was bad" with
"this domain is hard". Only training uses it: acting, evaluation and export run the actor, and
the value a deployed policy reports is the plain head's, from the history alone (see
``domrand.policies.networks`` for how the two value heads are trained).

The features are ``value - nominal`` per knob, in the order of :func:`critic_knobs`; a knob the
domain does not set is at its nominal value (feature 0). The network standardizes them with a
running mean and variance (``ActorCritic.critic_norm``), so units and scales do not matter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from domrand.errors import DomrandError
from domrand.knobs import KnobSet

__all__ = ["DomainFeatures", "critic_knobs"]


def critic_knobs(spec: Any) -> tuple[str, ...]:
    """The knobs a privileged critic sees under ``spec``: those it draws once per episode.

    Pinned values (constant entries) carry no information and entries re-drawn within an
    episode (``every: step``/``every: N``) are not one value per episode, so both are left out.
    ``None`` (no randomization) gives no knobs.
    """
    if spec is None:
        return ()
    from domrand.distributions import Constant

    within = spec.step_periods()
    names = [p.knob for p in spec.parameters if not isinstance(p.dist, Constant)]
    names += [k for g in spec.groups for k in g.knobs]
    return tuple(n for n in dict.fromkeys(names) if n not in within)


class DomainFeatures:
    """Maps domains to the critic's feature rows ``[N, len(names)]`` (float32).

    Args:
        names: the knobs, in feature order (``NetConfig.critic_knobs``).
        knobs: the env's knobs, for the nominal values.

    Raises:
        DomrandError: a name that is not one of the env's knobs.
    """

    def __init__(self, names: Sequence[str], knobs: KnobSet) -> None:
        missing = [n for n in names if n not in knobs]
        if missing:
            raise DomrandError(
                f"the critic's knobs {missing} are not knobs of this env (it has: "
                f"{', '.join(knobs)})"
            )
        self.names = tuple(names)
        self.nominal = torch.tensor([knobs[n].nominal for n in self.names], dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.names)

    def __call__(self, domains: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        rows = torch.tensor(
            [[float(d.get(n, nom)) for n, nom in zip(self.names, self.nominal.tolist())]
             for d in domains],
            dtype=torch.float64,
        ).reshape(len(domains), len(self.names))  # fmt: skip
        return (rows - self.nominal).to(torch.float32)
