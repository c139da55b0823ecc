"""The conformance suite: run with `bpconform run --buildpack DIR` or `pytest --pyargs conformance.suite`."""
