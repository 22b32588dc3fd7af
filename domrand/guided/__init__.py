"""Guided domain randomization: algorithms that change the distribution while policies train."""
