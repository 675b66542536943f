"""Operating convoflow: request ids, Prometheus metrics and the probes behind /health."""
