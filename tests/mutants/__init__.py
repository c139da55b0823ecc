"""Known-bad variants of the reference buildpack, and a runner that proves the suite fails each one."""
