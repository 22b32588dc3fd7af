"""The guide hook: where a training run takes its domains from.

A trainer asks its guide, while training runs, for the current randomization distribution and for
exact domains to give particular envs, and tells it how each finished episode went. A plain spec is
the trivial guide (:class:`SpecSource`); guided DR (CMA-ES, SimOpt, ADR, ...) subclasses
:class:`Guide` and changes its answers as feedback arrives.

How the trainer uses a guide (``domrand.policies.rollout``):

* before the first episode and after every finished episode it calls :meth:`Guide.training_spec`
  and :meth:`Guide.assignments`; a changed spec is pushed to every env (also to subprocess
  workers) with ``VectorEnv.call("set_spec", spec)``, changed assignments with
  ``VectorEnv.set_attr("assigned_domain", [...])``. Both take effect at each env's next reset,
  and ended envs are reset only *after* the push, so an assignment made in
  :meth:`Guide.observe_episode` applies to that env's very next episode;
* :meth:`Guide.observe_episode` gets every finished episode with the domain it ran in;
* :meth:`Guide.on_update` is called after every PPO update with the policy being trained, for
  guides that run rollouts of their own (Active DR's discriminator rollouts) or log over time;
* :meth:`Guide.state_dict` is saved inside the trainer's checkpoint, and
  :meth:`Guide.load_state_dict` restores it on ``--resume``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from domrand.spec import Domain, RandomizationSpec

__all__ = ["Guide", "SpecSource"]


class Guide(ABC):
    """Base class of everything that decides the training domains while training runs."""

    @abstractmethod
    def training_spec(self) -> RandomizationSpec | None:
        """The distribution the envs should sample from now.

        Return the same object while it is unchanged (the trainer pushes a spec only when it
        differs from the last one pushed). ``None`` leaves the envs' current spec as it is.
        """

    def assignments(self, num_envs: int) -> list[Domain | None]:
        """Exact domains for particular envs (index -> domain, ``None`` = sample from the spec).

        An assigned domain pins the env's knobs for every following episode until the guide
        returns ``None`` for it again. The default assigns nothing.
        """
        return [None] * num_envs

    def observe_episode(
        self,
        env_index: int,
        domain: Domain,
        episode_return: float,
        length: int,
        info: Mapping[str, Any],
    ) -> None:
        """Feedback: env ``env_index`` finished an episode in ``domain``.

        ``info`` is the final step's info; ``info.get("physics_fault")`` marks an episode the
        simulator broke (its return says nothing about the policy), and ``info["success"]`` tells
        whether it ran to the time limit (or the env's own ``is_success``). The default ignores it.
        """
        return None

    def on_update(self, policy: Any, env_steps: int) -> None:  # noqa: B027 - optional hook
        """Called after every PPO update (before the checkpoint) with the policy being trained.

        ``policy`` is the trainer's ``ActorCritic``; a guide may run it (under ``torch.no_grad``,
        restoring its train/eval mode) but must not change its weights. ``env_steps`` counts the
        training env steps so far. The default does nothing.
        """

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after a resume; plain containers, numbers, strings and
        tensors only (it is stored in a ``weights_only`` checkpoint)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`state_dict` returned."""


class SpecSource(Guide):
    """The trivial guide: one fixed spec (or ``None`` for nominal dynamics), no assignments."""

    def __init__(self, spec: RandomizationSpec | None) -> None:
        self.spec = spec

    def training_spec(self) -> RandomizationSpec | None:
        return self.spec

    def __repr__(self) -> str:
        return f"SpecSource({self.spec.source if self.spec is not None else None!r})"
