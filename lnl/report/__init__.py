"""Reports over run records: tables per model-selection rule, figures, a README page, W&B publishing."""
