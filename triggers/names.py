"""Function names of the edge (the contract's names; devhost and Azure address functions by them)."""

ON_BLOB_DROP = "on_blob_drop"
NIGHTLY_RETRAIN = "nightly_retrain"
HTTP_RETRAIN = "http_retrain"
LIST_RUNS = "list_runs"
GET_RUN = "get_run"
LIST_MODELS = "list_models"
DASHBOARD = "dashboard"
ON_MODEL_REGISTERED = "on_model_registered"
SUPERVISE_ENDPOINTS = "supervise_endpoints"
WARMUP = "warmup"

STORAGE_CONNECTION = "AzureWebJobsStorage"
