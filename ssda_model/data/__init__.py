"""Reading, validating, aligning, scaling and splitting the two domains."""
