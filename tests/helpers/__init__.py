"""Helpers more than one test suite uses: polling with a deadline, e2e DNS and pod checks."""
