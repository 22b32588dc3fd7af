"""The recurrent PPO update (clipped surrogate, value loss, entropy), CleanRL-style.

One call = ``epochs`` passes over a rollout cut into sequences (``buffer.make_sequences``). Each
minibatch is a set of whole sequences; the LSTM is re-run over them from their stored states in
one call (``ActorCritic.sequence``), and every loss is a mean over real steps only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from domrand.policies.buffer import Sequences, masked_mean
from domrand.policies.config import TrainConfig
from domrand.policies.networks import ActorCritic

__all__ = ["UpdateStats", "ppo_losses", "ppo_update"]


@dataclass(frozen=True)
class UpdateStats:
    """Averages over the minibatches of one update (what metrics.csv logs)."""

    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clip_frac: float
    explained_var: float
    grad_norm: float
    epochs: int


def ppo_losses(
    policy: ActorCritic, mb: Sequences, cfg: TrainConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO loss of one minibatch of sequences, and diagnostics.

    Padding (``mb.mask`` false) is excluded from every mean, including the advantage
    normalization, so it cannot change the loss or its gradient.
    """
    m = mb.mask
    # Replay the recurrence from the states the actor had (masked at episode starts inside).
    mean, value, plain = policy.sequence_values(
        mb.obs, mb.prev_action, mb.prev_reward, mb.state0, mb.starts, mb.priv
    )
    logp = policy.log_prob(mean, mb.actions)
    log_ratio = logp - mb.logprobs
    ratio = log_ratio.exp()

    adv = mb.advantages
    if cfg.norm_adv:
        mu = masked_mean(adv, m)
        std = masked_mean((adv - mu).pow(2), m).sqrt()
        adv = (adv - mu) / (std + 1e-8)
    # Clipped surrogate: pessimistic bound of the unclipped and clipped objectives.
    clipped = torch.clamp(ratio, 1 - cfg.clip_coef, 1 + cfg.clip_coef)
    pg = torch.maximum(-adv * ratio, -adv * clipped)
    policy_loss = masked_mean(pg, m)
    value_loss = 0.5 * masked_mean((value - mb.returns).pow(2), m)
    if policy.config.priv_dim:  # a privileged critic: the plain head is fit too (shapes the trunk)
        value_loss = value_loss + 0.5 * masked_mean((plain - mb.returns).pow(2), m)
    entropy = policy.entropy()  # state-independent std: the same at every step
    loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
    with torch.no_grad():
        diag = {
            "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(),
            "entropy": entropy.detach(),
            # k3 estimator of KL(old || new) (Schulman), low variance and always >= 0
            "approx_kl": masked_mean((ratio - 1) - log_ratio, m),
            "clip_frac": masked_mean(((ratio - 1).abs() > cfg.clip_coef).float(), m),
        }
    return loss, diag


def ppo_update(
    policy: ActorCritic,
    optimizer: torch.optim.Optimizer,
    seqs: Sequences,
    cfg: TrainConfig,
    generator: torch.Generator,
) -> UpdateStats:
    """Run ``cfg.epochs`` epochs of minibatch PPO over ``seqs``."""
    chunks_per_batch = max(1, cfg.batch_size // seqs.obs.shape[0])
    # A privileged critic's head is clipped on its own (see its docs in networks.py).
    named = list(policy.named_parameters())
    priv_params = [p for n, p in named if n.startswith("priv_critic.")]
    main_params = [p for n, p in named if not n.startswith("priv_critic.")]
    sums: dict[str, float] = {}
    n = 0
    grad_norm = 0.0
    epochs_done = 0
    for _ in range(cfg.epochs):
        kls = []
        for mb in seqs.minibatches(chunks_per_batch, generator):
            loss, diag = ppo_losses(policy, mb, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm += float(nn.utils.clip_grad_norm_(main_params, cfg.max_grad_norm))
            if priv_params:  # a separate learner: its gradient does not shrink the policy's
                nn.utils.clip_grad_norm_(priv_params, cfg.max_grad_norm)
            optimizer.step()
            for k, v in diag.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            kls.append(float(diag["approx_kl"]))
            n += 1
        epochs_done += 1
        if cfg.target_kl is not None and sum(kls) / len(kls) > cfg.target_kl:
            break
    m = seqs.mask
    y, v = seqs.returns[m], seqs.values[m]
    var_y = float(y.var()) if y.numel() > 1 else 0.0
    explained = float("nan") if var_y == 0 else 1.0 - float((y - v).var()) / var_y
    return UpdateStats(
        policy_loss=sums["policy_loss"] / n,
        value_loss=sums["value_loss"] / n,
        entropy=sums["entropy"] / n,
        approx_kl=sums["approx_kl"] / n,
        clip_frac=sums["clip_frac"] / n,
        explained_var=explained,
        grad_norm=grad_norm / n,
        epochs=epochs_done,
    )
