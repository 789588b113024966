"""A MAST emulator for tests: ExoMAST v0.1 over real HTTP on loopback, with deterministic data and faults."""

from .server import FakeMast

__all__ = ["FakeMast"]
