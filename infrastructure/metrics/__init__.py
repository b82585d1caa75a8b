"""The engine's Prometheus metrics: families, what feeds them, and the transport probe."""
