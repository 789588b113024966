"""TESS time-series service: ExoMAST DV products and TESScut cutouts behind one caching REST API."""

__version__ = "0.1.0"
