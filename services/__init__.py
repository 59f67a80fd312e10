"""The application's use cases over the ports: drops, datasets, models, deployments, the release lock, API tests."""
