"""Outbound I/O: JWKS fetch and cache, the OAuth2 client and token cache, backend tokens."""
