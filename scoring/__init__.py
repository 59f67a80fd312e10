"""The scoring service: the server used offline and on AKS, ``score.py`` for Azure ML, prediction logging, drift."""
