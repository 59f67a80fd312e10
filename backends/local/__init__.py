"""Local stand-ins for the Azure services: subprocess training jobs, an MLflow registry, scoring-server endpoints.

Kept import-light: ``python -m backends.local.job_runner`` starts through this package for every job.
"""
