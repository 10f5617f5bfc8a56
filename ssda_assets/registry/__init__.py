"""The MLflow side of a training: its run, the registered versions and their champion and
challenger aliases, the lock that serialises alias moves, retention, `models:/` URIs and the pyfunc."""
