"""planeai: mission control for parallel AI coding agents in the terminal."""

__version__ = "0.1.0"
