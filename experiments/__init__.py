"""Federated experiments: the Flower ServerApp, strategies and models."""
