"""Acting: step a vector env with the policy, fill a ``Rollout``, feed the guide.

The vector env runs with gymnasium's autoreset DISABLED: when an episode ends, the step returns
its true final observation, and this module resets the ended envs itself (``reset_mask``) after
telling the guide about the episode and pushing the guide's answers. So (1) a time-limit
truncation is bootstrapped from V(final observation), with the LSTM state the episode would have
continued with, and (2) a domain the guide assigns on seeing an episode end applies to that env's
very next episode, in-process or in subprocess workers alike.

An episode whose backend worker died (``info["worker_restart"]``, see
``domrand.backends.vector``) ends at the lost step as a truncation bootstrapped from V(its last
observation); it is counted as a fault and not reported to the guide.

A physics fault (``info["physics_fault"]``: NaN or runaway state) comes back from the env as
terminated with reward 0 and a zero observation. It is not a terminal state of the task, and a
value of 0 would make it a free exit in an env whose rewards are costs (a policy could learn to
break the simulator instead of finishing the task). So the fault step is bootstrapped from the
critic's value of the last state the simulator did produce (``values[t]``): breaking the
simulator neither pays nor costs. The episode is counted as a fault and reported to the guide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from domrand.backends.vector import split_info
from domrand.errors import DomrandError
from domrand.guided.base import Guide
from domrand.policies.buffer import Rollout
from domrand.policies.networks import ActorCritic, LSTMState
from domrand.policies.privileged import DomainFeatures
from domrand.spec import Domain

__all__ = ["Collector", "Episode", "env_info"]


@dataclass(frozen=True)
class Episode:
    """A finished episode of one env."""

    env_index: int
    ret: float
    length: int
    fault: bool  #: the simulator broke (``info["physics_fault"]``): not a policy outcome
    success: bool  #: ran to the time limit (or the env's own ``is_success``)
    domain: Domain
    #: cut short because its backend worker died (``info["worker_restart"]``); also a ``fault``
    interrupted: bool = False


def env_info(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Env ``i``'s own info out of gymnasium's batched info dict (values as Python scalars)."""
    return split_info(infos, i, keep_empty=True)


class Collector:
    """Holds the acting state between rollouts: observations, RL^2 inputs, LSTM state, episodes.

    Args:
        envs: a vector env built with ``autoreset_mode=DISABLED``.
        policy: the actor-critic.
        guide: where domains come from; its current spec is assumed to be the envs' spec.
        generator: the torch generator actions are sampled from.
        features: a privileged critic's domain features (required when the policy has one):
            each episode's domain (``info["domain"]`` at its reset) becomes the critic input
            ``priv`` of all its steps.
    """

    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        policy: ActorCritic,
        guide: Guide,
        generator: torch.Generator,
        features: DomainFeatures | None = None,
    ) -> None:
        if envs.metadata.get("autoreset_mode") != gym.vector.AutoresetMode.DISABLED:
            raise DomrandError("the trainer needs a vector env with autoreset_mode=DISABLED")
        width = 0 if features is None else len(features)
        if width != policy.config.priv_dim:
            raise DomrandError(
                f"the policy's critic sees {policy.config.priv_dim} domain features, the "
                f"collector was given {width}"
            )
        self.features = features
        self.envs, self.policy, self.guide, self.generator = envs, policy, guide, generator
        self.N = envs.num_envs
        self._pushed_spec = guide.training_spec()
        self._pushed_assignments: list[Domain | None] = [None] * self.N
        self.ep_return = np.zeros(self.N)
        self.ep_length = np.zeros(self.N, dtype=np.int64)
        self.domains: list[Domain] = [{} for _ in range(self.N)]
        self.priv = self._features(self.domains)

    def _features(self, domains: list[Domain]) -> torch.Tensor:
        if self.features is None:
            return torch.zeros(len(domains), 0)
        return self.features(domains)

    def sync_guide(self) -> None:
        """Push the guide's spec and assignments to the envs when they changed."""
        spec = self.guide.training_spec()
        if spec is not None and spec is not self._pushed_spec and spec != self._pushed_spec:
            self.envs.call("set_spec", spec)
            self._pushed_spec = spec
        assignments = list(self.guide.assignments(self.N))
        if len(assignments) != self.N:
            raise DomrandError(
                f"{type(self.guide).__name__}.assignments returned {len(assignments)} entries "
                f"for {self.N} envs"
            )
        if assignments != self._pushed_assignments:
            self.envs.set_attr("assigned_domain", assignments)
            self._pushed_assignments = assignments

    def reset(self, seeds: list[int]) -> None:
        """Start fresh episodes in every env (the trainer does this at checkpoint boundaries)."""
        self.sync_guide()
        obs, infos = self.envs.reset(seed=seeds)
        self.obs = torch.tensor(obs, dtype=torch.float32)
        act_dim = self.policy.config.act_dim
        self.prev_action = torch.zeros(self.N, act_dim)
        self.prev_reward = torch.zeros(self.N)
        self.starts = torch.ones(self.N, dtype=torch.bool)
        self.state = self.policy.initial_state(self.N)
        self.ep_return[:] = 0.0
        self.ep_length[:] = 0
        self.domains = [env_info(infos, i).get("domain", {}) for i in range(self.N)]
        self.priv = self._features(self.domains)

    @torch.no_grad()
    def collect(self, buf: Rollout) -> list[Episode]:
        """Fill ``buf`` with ``buf.T`` steps of every env; return the episodes that finished."""
        policy, episodes = self.policy, []
        for t in range(buf.T):
            # Store the inputs of this step, including the LSTM state carried INTO it (before the
            # reset at an episode start): the update replays the sequence from exactly this.
            buf.obs[t] = self.obs
            buf.prev_action[t] = self.prev_action
            buf.prev_reward[t] = self.prev_reward
            buf.starts[t] = self.starts
            buf.h[t] = self.state.h[0]
            buf.c[t] = self.state.c[0]
            buf.priv[t] = self.priv
            # (a plain critic ignores priv, which is then 0 wide)
            mean, value, state = policy.step(
                self.obs, self.prev_action, self.prev_reward, self.state, self.starts, self.priv
            )
            # Sample unbounded (log-prob exact), send the clipped action to the env.
            action, logp = policy.sample(mean, self.generator)
            env_action = policy.clip_action(action)
            obs, reward, term, trunc, infos = self.envs.step(env_action.numpy())
            buf.actions[t] = action
            buf.logprobs[t] = logp
            buf.values[t] = value
            reward_t = torch.as_tensor(reward, dtype=torch.float32)
            buf.rewards[t] = reward_t
            buf.final_values[t] = 0.0
            self.ep_return += reward
            self.ep_length += 1
            next_obs = torch.tensor(obs, dtype=torch.float32)
            ended = np.logical_or(term, trunc)
            if ended.any():
                episodes += self._end_episodes(
                    t, buf, ended, term, trunc, infos, next_obs, env_action, reward_t, state
                )
            buf.ended[t] = torch.from_numpy(ended)
            self.obs, self.prev_action, self.prev_reward = next_obs, env_action, reward_t
            self.starts, self.state = torch.from_numpy(ended), state
        # Bootstrap for episodes still running at the end of the rollout.
        _, buf.last_values[:], _ = policy.step(
            self.obs,
            self.prev_action,
            self.prev_reward,
            self.state,
            self.starts,
            self.priv,
        )
        return episodes

    def _end_episodes(
        self,
        t: int,
        buf: Rollout,
        ended: np.ndarray,
        term: np.ndarray,
        trunc: np.ndarray,
        infos: dict[str, Any],
        next_obs: torch.Tensor,
        env_action: torch.Tensor,
        reward: torch.Tensor,
        state: LSTMState,
    ) -> list[Episode]:
        """Bootstrap truncations, report episodes to the guide, reset the ended envs."""
        policy = self.policy
        # Time-limit truncation: the state is not terminal, so GAE bootstraps from V(final obs),
        # evaluated with the LSTM state and RL^2 inputs the episode would have continued with.
        # (A physics fault comes back as terminated; it is bootstrapped below, from values[t].)
        boot = np.flatnonzero(trunc & ~term)
        if boot.size:
            j = torch.from_numpy(boot)
            _, v, _ = policy.step(
                next_obs[j],
                env_action[j],
                reward[j],
                LSTMState(state.h[:, j], state.c[:, j]),
                torch.zeros(len(j), dtype=torch.bool),
                self.priv[j],  # the ended episode's domain
            )
            buf.final_values[t, j] = v
        done = []
        for i in np.flatnonzero(ended).tolist():
            info = env_info(infos, i)
            interrupted = bool(info.get("worker_restart", False))
            fault = interrupted or bool(info.get("physics_fault", False))
            if fault and term[i]:  # not the task's terminal state: V(last good state), not 0
                buf.final_values[t, i] = buf.values[t, i]
            success = bool(info.get("is_success", bool(trunc[i]) and not bool(term[i])))
            success = success and not fault
            ret, length = float(self.ep_return[i]), int(self.ep_length[i])
            ep = Episode(i, ret, length, fault, success, self.domains[i], interrupted)
            done.append(ep)
            if not interrupted:  # a lost worker says nothing about the domain or the policy
                feedback = {**info, "success": success}
                self.guide.observe_episode(i, ep.domain, ep.ret, ep.length, feedback)
            self.ep_return[i] = 0.0
            self.ep_length[i] = 0
        # The guide has seen the episodes: push what it decided, THEN reset, so new assignments
        # and specs apply to these envs' very next episodes.
        self.sync_guide()
        obs, reset_infos = self.envs.reset(options={"reset_mask": ended})
        for i in np.flatnonzero(ended).tolist():
            self.domains[i] = env_info(reset_infos, i).get("domain", {})
        if self.features is not None:
            self.priv[torch.from_numpy(ended)] = self._features(
                [self.domains[i] for i in np.flatnonzero(ended).tolist()]
            )
        mask = torch.from_numpy(ended)
        next_obs[mask] = torch.as_tensor(obs[ended], dtype=torch.float32)
        return done
