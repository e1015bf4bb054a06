"""Launchers decide where runs execute; they know nothing about training."""
