"""Plain nn.Modules of SSDA4Drug and their losses."""
