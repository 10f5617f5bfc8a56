"""Analyses of scored cells (the paper's figures 4–7): drift over time, markers, attribution, latent space."""
