"""Dataset contracts: Arrow schemas, value rules and usage policies.

Imports no other FedPark package.
"""
