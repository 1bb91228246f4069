"""The ``fedpark`` command line."""
