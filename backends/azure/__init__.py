"""Azure implementations of the ports: Azure ML jobs, registry and online endpoints (azure-ai-ml SDK v2)."""
