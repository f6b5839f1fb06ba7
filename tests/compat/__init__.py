"""Cross-replay tests: histories are interchangeable between wftest and the ``durabletask`` package."""
