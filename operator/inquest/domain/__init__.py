"""Pure logic: no I/O, no Kubernetes or HTTP calls."""
