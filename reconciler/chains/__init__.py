"""Supply chains and deliveries: selection, params, template rendering, outputs, health."""
