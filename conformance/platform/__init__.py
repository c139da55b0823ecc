"""The embedded CNB platform: detect, build, layers, env, export, cache and launcher, run in containers."""
