"""Orchestrator function names and the event type that starts a release: renamed here, renamed everywhere."""

RETRAIN = "retrain"
RELEASE = "release"
BATCH = "batch"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
