"""The policy engine: pure, no network, no front-end libraries."""
