"""Simulation: the deterministic matching engine behind the simulator and the exchange emulator."""
