"""Protocols, the engine, the store and reports."""
