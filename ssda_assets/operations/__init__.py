"""Running the platform: the demo pipeline (`make demo`), the UI supervisor (`make ui`) and its
MLflow links, dead-run recovery, Ctrl-C and SIGTERM handling, and bad input shown as one sentence."""
