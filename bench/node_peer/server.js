'use strict';
// The Node peer of rrdev's benchmark (issue 12): what a developer would pick instead of
// rrdev for a JWT-checking local gateway. express 5 + express-oauth2-jwt-bearer (RS256
// against a JWKS served on loopback) + http-proxy-middleware with a keep-alive agent,
// replacing the caller's Authorization with the backend's own bearer token.
//
//   node server.js --port P --upstream http://127.0.0.1:N --jwks-uri URL
//                  --issuer ISS --audience AUD --backend-token TOKEN
//
// Prints "ready" once listening on 127.0.0.1. Installed and started by `python -m bench`.

const http = require('node:http');
const express = require('express');
const { auth } = require('express-oauth2-jwt-bearer');
const { createProxyMiddleware } = require('http-proxy-middleware');

function option(name) {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0 || at + 1 >= process.argv.length) {
    console.error(`missing --${name}`);
    process.exit(2);
  }
  return process.argv[at + 1];
}

const port = Number(option('port'));
const backendToken = option('backend-token');

const app = express();
app.disable('x-powered-by');
app.use(
  auth({
    issuer: option('issuer'),
    audience: option('audience'),
    jwksUri: option('jwks-uri'),
    tokenSigningAlg: 'RS256',
  }),
);
app.use(
  createProxyMiddleware({
    target: option('upstream'),
    changeOrigin: true,
    // Keep-alive to the backend, as rrdev's aiohttp pool does: a fair comparison.
    agent: new http.Agent({ keepAlive: true, maxSockets: 256 }),
    on: {
      proxyReq: (proxyReq) => proxyReq.setHeader('authorization', `Bearer ${backendToken}`),
    },
  }),
);
// A refusal as JSON (express's default error page is HTML); never echoes the token.
app.use((err, _req, res, _next) => {
  const status = err.status || 500;
  res.status(status).json({ status, reason: err.code || 'error', message: err.message });
});

app.listen(port, '127.0.0.1', () => console.log('ready'));
