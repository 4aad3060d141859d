"""The simulated world: an in-memory cluster, ecosystem controllers and a virtual clock."""
