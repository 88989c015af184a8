"""Composition root and command-line interface of polymm (the imperative shell)."""
