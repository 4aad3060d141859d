"""The cluster behind one protocol: `base.Backend`; implementations are wired by name."""
