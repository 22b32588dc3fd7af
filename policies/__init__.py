"""Policies and controllers (installed as ``domrand.policies``)."""

from domrand.policies.controllers import CartPoleLQR

__all__ = ["CartPoleLQR"]
