"""Runners start the training harness and return a handle. They never touch the store."""
