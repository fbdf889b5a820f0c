// http-message-signatures (not written here) against the gateway's RFC
// 9421 signatures: requests it signs with the demo partner's Ed25519 key
// and with its HMAC secret (keyid "hmac") are accepted, with an access
// token and with the API key, and it verifies the gateway's signed
// responses with the key of the gateway's JWKS.  A request whose body is
// not the signed one is refused.
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, randomBytes,
         randomUUID } from 'node:crypto';
import { httpbis, createSigner, createVerifier } from 'http-message-signatures';
import { base, root, creds, check, done, basicToken,
         contentDigest } from './common.mjs';

const ed25519 = createSigner(
    createPrivateKey(readFileSync(`${root}/${creds.signing_key}`)),
    'ed25519', creds.kid);
const hmac = createSigner(Buffer.from(creds.hmac_secret), 'hmac-sha256',
                          'hmac');

// the gateway's keys, by kid, as the verifier wants them
const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json();
const algOf = (jwk) => jwk.kty === 'OKP' ? 'ed25519'
    : jwk.kty === 'EC' ? 'ecdsa-p256-sha256' : 'rsa-pss-sha512';
const gateway = new Map(jwks.keys.map((jwk) => [jwk.kid, {
    id: jwk.kid, algs: [algOf(jwk)],
    verify: createVerifier(createPublicKey({ key: jwk, format: 'jwk' }),
                           algOf(jwk)),
}]));
check(gateway.size > 0, 'the gateway publishes its keys');

const token = (await basicToken()).json.access_token;
const credentials = {
    token: { authorization: `Bearer ${token}` },
    'API key': { 'x-api-key': creds.api_key },
};

let n = 0;
const payment = () => JSON.stringify({
    debtor_account: { number: '6222020000000001' },
    creditor_account: { number: '6222020000000201',
                        name: 'Shanghai Supplier Co., Ltd.',
                        bank_code: 'OBKCNSH' },
    amount: { value: '1.00', currency: 'CNY' },
    reference: `interop-${process.pid}-${++n}`,
});

// a request signed by the library; send => the body actually sent
async function signedCall(method, path, cred, key, body, send = body) {
    const headers = { ...cred, 'content-type': 'application/json' };
    if (method === 'POST') {
        headers['idempotency-key'] = randomUUID();
    }
    const fields = ['@method', '@target-uri'];
    if (body !== undefined) {
        headers['content-digest'] = contentDigest(body);
        fields.push('content-digest');
    }
    const request = { method, url: new URL(base + path), headers };
    const signed = await httpbis.signMessage({
        key, fields,
        params: ['created', 'expires', 'keyid', 'alg', 'nonce'],
        paramValues: { nonce: randomBytes(16).toString('base64url') },
    }, request);
    const r = await fetch(request.url, { method, headers: signed.headers,
                                         body: send });
    const raw = Buffer.from(await r.arrayBuffer());
    let json = {};
    try {
        json = JSON.parse(raw);
    } catch {
        /* not JSON */
    }
    return { request, status: r.status, raw,
             headers: Object.fromEntries(r.headers),
             json };
}

// the response's signature, verified by the library with the JWKS key
async function responseVerified(r, what) {
    try {
        check(r.headers['content-digest'] === contentDigest(r.raw),
              `${what}: the response's Content-Digest is its body's`,
              r.headers['content-digest']);
        const ok = await httpbis.verifyMessage({
            keyLookup: async (params) => gateway.get(params.keyid) ?? null,
            requiredFields: ['@status', 'content-digest', '@method',
                             '@target-uri'],
            requiredParams: ['created', 'keyid'],
            tolerance: 60,
        }, { status: r.status, headers: r.headers }, r.request);
        check(ok === true, `${what}: the response's signature verifies `
                           + 'with the gateway\'s JWKS', ok);
    } catch (e) {
        check(false, `${what}: the response's signature verifies`, e);
    }
}

for (const [cname, cred] of Object.entries(credentials)) {
    for (const [kname, key] of [['Ed25519', ed25519], ['HMAC', hmac]]) {
        const what = `${cname} + ${kname}`;
        const r = await signedCall('POST', '/v1/payments', cred, key,
                                   payment());
        check(r.status === 201 && r.json.status === 'pending',
              `${what}: POST /v1/payments 201`, r.raw);
        await responseVerified(r, `${what} POST /v1/payments`);
    }
}

const today = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
for (const path of ['/v1/accounts', `/v1/statements?date=${today}`]) {
    const r = await signedCall('GET', path, credentials.token, ed25519);
    check(r.status === 200, `token + Ed25519: GET ${path} 200`, r.raw);
    await responseVerified(r, `GET ${path}`);
}

// the verifier is not a yes-sayer: the same response with another status
const last = await signedCall('GET', '/v1/accounts', credentials.token,
                              ed25519);
try {
    const ok = await httpbis.verifyMessage({
        keyLookup: async (params) => gateway.get(params.keyid) ?? null,
    }, { status: 203, headers: last.headers }, last.request);
    check(ok !== true, 'a response with another status does not verify', ok);
} catch (e) {
    check(true, 'a response with another status does not verify');
}

const body = payment();
const r = await signedCall('POST', '/v1/payments', credentials['API key'],
                           hmac, body, body.replace('1.00', '9.00'));
check(r.status === 401 && r.json.code === 'signature_invalid',
      'a body other than the signed one: 401 signature_invalid', r.raw);

done();
