"""Repository tooling that is not part of the installed ``trigger`` package (see tools/estimator/)."""
