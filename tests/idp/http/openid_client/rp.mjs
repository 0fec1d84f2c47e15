// node openid-client v6 as a relying party of Tessera, driven by test_openid_client.py.
//   node rp.mjs start  ISSUER CLIENT_ID SECRET REDIRECT_URI      -> {url, state, nonce, verifier}
//   node rp.mjs finish ISSUER CLIENT_ID SECRET CALLBACK_URL STATE NONCE VERIFIER
//                                                                -> {claims, userinfo, refreshed}
// The issuer is plain http on 127.0.0.1, which openid-client refuses unless told otherwise.
import * as client from "openid-client";

const [command, issuer, clientId, secret, ...rest] = process.argv.slice(2);
const config = await client.discovery(new URL(issuer), clientId, secret, undefined, {
  execute: [client.allowInsecureRequests],
});

if (command === "start") {
  const [redirectUri] = rest;
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid profile email offline_access",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  console.log(JSON.stringify({ url: url.href, state, nonce, verifier }));
} else if (command === "finish") {
  const [callback, state, nonce, verifier] = rest;
  try {
    const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    console.log(
      JSON.stringify({
        claims,
        userinfo,
        scope: tokens.scope,
        refreshed: { sub: refreshed.claims()?.sub, rotated: refreshed.refresh_token !== tokens.refresh_token },
      }),
    );
  } catch (error) {
    // What the client refused, and why (the failed check is the error's cause).
    console.log(
      JSON.stringify({
        refused: error.code ?? error.name,
        message: error.message,
        detail: error.cause?.message ?? "",
      }),
    );
  }
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
