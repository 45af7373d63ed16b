"""Slipway: a Kubernetes operator for the production ML lifecycle."""

__version__ = "0.1.0"
GROUP = "slipway.dev"
VERSION = "v1alpha1"
