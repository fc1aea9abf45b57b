"""Geo4D Studio: inspect, generate and track multi-view RGB-D robot manipulation video."""

__version__ = "0.1.0"
