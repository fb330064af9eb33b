"""The local Auth0-compatible issuer: discovery, JWKS and client credentials (ASGI).

Offline, in CI, or before a tenant exists, this stands in for an Auth0 tenant:

* ``GET /.well-known/openid-configuration``: discovery. ``issuer`` is the configured
  identity (``[issuer].issuer``, default ``https://rrdev.local/`` with Auth0's trailing
  slash), which never depends on the port; ``jwks_uri`` and ``token_endpoint`` are the
  URLs the issuer really listens on.
* ``GET /.well-known/jwks.json``: the public half of the local keyset
  (``$RRDEV_HOME/keyset.json``), signing key first, then keys still in their rotation
  grace period. The file is re-read when it changes (one ``stat`` per request), so
  ``rrdev issuer rotate`` in another terminal takes effect without a restart.
* ``POST /oauth/token``: ``grant_type=client_credentials`` with a JSON or form body; the
  client authenticates with ``client_secret`` in the body or with HTTP Basic, or (a
  client with ``public_key_file`` or ``jwks_uri``) with a ``private_key_jwt`` client
  assertion (``assertion``: 401 ``invalid_client`` when forged, stale or replayed). Tokens are
  shaped like Auth0's machine-to-machine access tokens (``iss``, ``sub =
  <client_id>@clients``, ``aud``, ``iat``, ``exp``, ``scope``, ``gty``, ``azp``; header
  ``kid``). The granted scope is the requested scopes the client is allowed (all of
  them when none are requested).

Errors have Auth0's shape, ``{"error", "error_description"}``: 400
``invalid_request`` (bad JSON or form, missing parameter), 400
``unsupported_grant_type``, 401 ``access_denied`` (unknown client or wrong secret: the
same answer for both, as Auth0 gives), 403 ``access_denied`` (an audience the client is
not granted), 413 (a body over 64 KiB, refused while reading). No secret is ever
echoed or reported: ``on_event`` gets one line per token request naming the client,
never its secret.

The modules:

* ``app``: ``IssuerApp``, the ASGI application: routes, discovery, JWKS, answers.
* ``grant``: ``ClientCredentialsGrant``: client authentication and token issuing.
* ``assertion``: ``ClientAssertions``: private_key_jwt assertions verified, jtis remembered.
* ``request``: reading a token request (body limit, JSON or form) and ``OAuthError``.
* ``config``: paths, ``issuer_config_for``, the resolved clients, ``IssuerUrls``.
* ``keys``: ``KeysetWatcher``, the keyset file re-read when it changes.
"""
