"""Polymarket wire schemas, parsers and clients."""
