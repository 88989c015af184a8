"""Simulation: tapes and their sources, the lockstep runner and its summary, over ``venue``."""
