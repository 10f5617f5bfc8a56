"""The training loop of one repetition and the repetition protocol around it."""
