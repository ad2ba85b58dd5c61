"""Analyses over run records and re-scored predictions: the headline table, the comparison at equal Baseline
accuracy, the test-draw re-weighting and the decoded test colours. Each is a function of data in, table or
figure out; ``lnl-report`` calls them. None trains anything."""
