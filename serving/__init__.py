"""Serving PAN exports with TensorFlow Serving: a REST client and deployment files."""
