"""Shipped data: default training specs and reality domain files (``domrand.assets``)."""
