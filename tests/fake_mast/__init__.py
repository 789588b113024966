"""A MAST emulator for tests: ExoMAST v0.1, TESScut v0.1 and the Portal's TIC over real HTTP on loopback.

Deterministic data, fault injection, counters; see server.FakeMast.
"""

from .server import FakeMast

__all__ = ["FakeMast"]
