"""Trainability: signal propagation at initialisation (probe) and short training studies (train)."""
