"""The reference Python buildpack of buildpack-conformance (standard library only, Python 3.11+)."""
