"""Adapters connect the actors to the outside: Polymarket (REST, WebSocket, Gamma), files, clocks."""
