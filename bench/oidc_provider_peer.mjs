// node oidc-provider, configured like Tessera's relying party in bench/idp_bench.py: the peer the
// OpenID Connect scenarios are measured against in the same run.
//
//     taskset -c 0 node bench/oidc_provider_peer.mjs '{"port": 8123, "client_id": "...", ...}'
//
// bench/idp_bench.py starts it (pinned to the server's core), reads one JSON line ("ready") from
// its stdout, signs in once through the interaction below, and then drives load at it. Nothing
// here is meant for anything but that benchmark: the interaction signs in a fixed account without
// asking anything.
//
// Configured as Tessera is for the bench: a service client (client_credentials, ES256 JWT access
// tokens for one API, introspection of opaque ones), a confidential client (client_secret_basic,
// the authorization_code and refresh_token grants, one redirect URI), PKCE required (S256, the only
// method oidc-provider 9 has), an RS256 key (ID tokens, as Tessera's clients default to) and an
// ES256 one, a refresh token for every code of a client allowed the refresh grant (Tessera's
// rule; oidc-provider's default asks for offline_access), UserInfo on, devInteractions off,
// lifetimes as Tessera's defaults. Storage is oidc-provider's own in-memory adapter class; only
// its bound is raised: the default store keeps the last ~1,000 entries, so the codes the bench
// collects before a measured window (tens of thousands) would be evicted before use.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider, { errors } from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const spec = JSON.parse(process.argv[2] ?? '{}');
const host = spec.host ?? '127.0.0.1';
const port = Number(spec.port);
const issuer = `http://${host}:${port}`;
const account = {
  sub: spec.sub,
  preferred_username: spec.username ?? 'bench-oidc',
  updated_at: spec.updated_at ?? Math.floor(Date.now() / 1000),
  email: spec.email ?? 'bench-oidc@example.com',
  email_verified: false,
};

function signingKey(type, alg, options) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `${alg}-${randomBytes(6).toString('hex')}` };
}

const store = new LRU({ maxSize: 10_000_000 });
const DAY = 24 * 3600;

// The API the service client's access tokens are for (RFC 8707): its tokens are ES256 JWTs (RFC
// 9068), as Tessera's are. A client_credentials grant without a resource gets an opaque token,
// the only kind oidc-provider introspects.
const api = {
  audience: spec.audience ?? 'bench-api',
  scope: spec.scope ?? 'bench:read bench:write',
  accessTokenTTL: 900,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'ES256' } },
};

const provider = new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: [
    {
      client_id: spec.client_id,
      client_secret: spec.client_secret,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [spec.redirect_uri],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    {
      client_id: spec.service_id,
      client_secret: spec.service_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: api.scope,
    },
  ],
  jwks: {
    keys: [
      signingKey('rsa', 'RS256', { modulusLength: 2048 }),
      signingKey('ec', 'ES256', { namedCurve: 'P-256' }),
    ],
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'updated_at'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', ...api.scope.split(' ')],
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (ctx, resource) => {
        if (resource !== spec.resource) throw new errors.InvalidTarget();
        return api;
      },
    },
  },
  pkce: { required: () => true },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  findAccount: async (ctx, sub) => (sub === account.sub
    ? { accountId: sub, claims: async () => ({ ...account }) }
    : undefined),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: 900,
    ClientCredentials: 900,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 30 * DAY,
    Grant: 30 * DAY,
    Session: 7 * DAY,
    Interaction: 3600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// The interaction: the fixed account signs in (amr pwd) and allows the scopes asked for. After
// it, the browser has the provider's session cookies, and every later /auth is an SSO hop.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([\w-]+)$/.exec(ctx.path);
  if (!match || ctx.method !== 'GET') {
    return next();
  }
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: account.sub, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope ?? 'openid'));
  const grantId = await grant.save();
  const returnTo = await provider.interactionResult(
    ctx.req,
    ctx.res,
    { login: { accountId: account.sub, amr: ['pwd'] }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
  ctx.status = 303;
  ctx.redirect(returnTo);
  return undefined;
});

let failures = 0;
provider.on('server_error', (ctx, error) => {
  failures += 1;
  if (failures <= 5) console.error(`server_error: ${error?.stack ?? error}`);
});

const version = JSON.parse(
  readFileSync(new URL('./node_modules/oidc-provider/package.json', import.meta.url)),
).version;
const server = provider.listen(port, host, () => {
  process.stdout.write(`${JSON.stringify({
    ready: true, issuer, pid: process.pid, node: process.version, oidc_provider: version,
  })}\n`);
});
server.keepAliveTimeout = 75_000; // the load's connections stay open between windows

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
