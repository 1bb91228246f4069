"""The FedPark hub: registry of organizations, contracts, experiments and models."""
