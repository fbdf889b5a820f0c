// jose (not written here) against the gateway's token service: the access
// token of client_secret_basic verifies with the gateway's published JWKS
// (RFC 7519, RFC 9068 at+jwt), and a client assertion jose signs with the
// demo partner's Ed25519 key (private_key_jwt, RFC 7523) gets a token.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, importPKCS8, SignJWT,
         decodeProtectedHeader, errors } from 'jose';
import { base, root, creds, check, done, basicToken } from './common.mjs';

const meta = await (await fetch(
    `${base}/.well-known/oauth-authorization-server`)).json();
const issuer = meta.issuer;
check(issuer === base, 'the issuer is the gateway\'s address',
      `issuer ${issuer}`);
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri ??
                                        `${base}/.well-known/jwks.json`));

async function verified(token, what) {
    try {
        const { payload, protectedHeader } = await jwtVerify(token, jwks, {
            issuer, audience: issuer, typ: 'at+jwt',
            algorithms: ['ES256', 'PS256', 'EdDSA'],
        });
        check(true, `${what}: jose verifies it with the JWKS `
                    + `(${protectedHeader.alg}, kid ${protectedHeader.kid})`);
        return payload;
    } catch (e) {
        check(false, `${what}: jose verifies it with the JWKS`, e);
        return null;
    }
}

// client_secret_basic
const t = await basicToken('accounts payments');
check(t.status === 200 && t.json.token_type === 'Bearer',
      'client_secret_basic: a Bearer token', JSON.stringify(t.json));
const claims = await verified(t.json.access_token, 'client_secret_basic');
check(claims?.sub === creds.client_id && claims?.client_id === creds.client_id,
      'its sub and client_id are the demo partner\'s', JSON.stringify(claims));
check(claims?.scope === 'accounts payments', 'its scope is the one asked for',
      claims?.scope);
check(claims && claims.exp - claims.iat === t.json.expires_in,
      'exp - iat is expires_in');

// a changed token does not verify
const [h, p, s] = t.json.access_token.split('.');
const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'escrow' }))
    .toString('base64url');
try {
    await jwtVerify(`${h}.${forged}.${s}`, jwks, { issuer, audience: issuer });
    check(false, 'a token whose claims were changed does not verify');
} catch (e) {
    check(e instanceof errors.JWSSignatureVerificationFailed,
          'a token whose claims were changed does not verify', e);
}

// private_key_jwt: the assertion signed by jose
const key = await importPKCS8(
    readFileSync(`${root}/${creds.signing_key}`, 'utf8'), 'EdDSA');
const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid: creds.kid })
    .setIssuer(creds.client_id).setSubject(creds.client_id)
    .setAudience(`${base}/oauth2/token`).setIssuedAt()
    .setExpirationTime('60s').setJti(randomUUID())
    .sign(key);
const r = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type:
            'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
    }),
});
const pk = await r.json();
check(r.status === 200, 'private_key_jwt with a jose assertion: a token',
      JSON.stringify(pk));
if (pk.access_token) {
    await verified(pk.access_token, 'private_key_jwt');
    check(decodeProtectedHeader(pk.access_token).typ === 'at+jwt',
          'typ at+jwt');
}

// the same assertion again is a replay
const again = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type:
            'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
    }),
});
check(again.status === 401, 'the same assertion again: 401', again.status);

// the token is accepted by the API
const acc = await fetch(`${base}/v1/accounts`, {
    headers: { authorization: `Bearer ${t.json.access_token}` },
});
check(acc.status === 200, 'GET /v1/accounts with it: 200', acc.status);

done();
