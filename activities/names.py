"""Activity function names, in one place (orchestrators call activities by these strings)."""

VALIDATE_DROP = "validate_drop"
QUARANTINE_DROP = "quarantine_drop"
ACCEPT_DROP = "accept_drop"
SNAPSHOT_DATASET = "snapshot_dataset"
SUBMIT_TRAINING = "submit_training"
TRAINING_STATUS = "training_status"
CANCEL_TRAINING = "cancel_training"
EVALUATE_CHALLENGER = "evaluate_challenger"
REGISTER_MODEL = "register_model"
DESCRIBE_MODEL = "describe_model"
SET_MODEL_STAGE = "set_model_stage"
CLAIM_RELEASE = "claim_release"
FREE_RELEASE = "free_release"
DEPLOY_MODEL = "deploy_model"
SET_TRAFFIC = "set_traffic"
REMOVE_DEPLOYMENT = "remove_deployment"
ENDPOINT_OPERATION_STATUS = "endpoint_operation_status"
API_TEST = "api_test"

#: starts the message of an activity failure that a retry can help (a timeout, storage down, a 5xx); every other
#: failure is permanent and fails the run at once with its message (``orchestrators.steps.call``)
RETRYABLE = "[retryable]"
