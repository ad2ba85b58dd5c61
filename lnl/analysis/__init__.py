"""Analyses over run records and re-scored predictions: the headline table, the comparison at equal Baseline
accuracy, the test-draw re-weighting, the decoded test colours and what the protocol leaves the
label-free methods (:mod:`lnl.analysis.protocol`). Each is a function of data in, table or
figure out; ``lnl-report`` calls them. None trains anything."""
