"""Pure ML: data contract, validation, training, evaluation. No Azure or Functions imports."""
