"""ASGI apps and the uvicorn runner: the proxy, the local issuer, the echo backend, the demo."""
