"""The shared SQL layer: one implementation of the storage port for both backends."""
