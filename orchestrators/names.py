"""Orchestrator function names, the event type that starts a release and the external events a release waits for:
renamed here, renamed everywhere."""

RETRAIN = "retrain"
RELEASE = "release"
BATCH = "batch"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
#: the external event ``POST /api/runs/{id}/approve`` and ``/reject`` raise (``messages.steps.ApprovalDecision``)
APPROVAL_DECISION = "approval_decision"
