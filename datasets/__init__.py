"""Data sources and partitioners for factories' local data (may import ``fedpark.contracts``)."""
