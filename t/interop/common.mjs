// What the interop scripts share: the gateway's address and the demo
// partner's credentials from the environment the test gives them, and a
// TAP-like report ("ok - what" / "not ok - what # why") that t/interop.t
// turns into its assertions.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

export const base = process.env.OB_BASE_URL ?? 'http://127.0.0.1:8080';
export const root = process.env.OB_ROOT ?? '.';
export const creds = JSON.parse(
    readFileSync(`${root}/conf/demo/credentials.json`, 'utf8'));

let failed = 0;

export function check(ok, what, why) {
    if (ok) {
        console.log(`ok - ${what}`);
    } else {
        failed++;
        const note = why ? ` # ${String(why).replace(/\n/g, ' ')}` : '';
        console.log(`not ok - ${what}${note}`);
    }
    return ok;
}

export function done() {
    process.exitCode = failed ? 1 : 0;
}

export function contentDigest(body) {
    return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

// a token for the demo partner, client_secret_basic (docs/tokens.md)
export async function basicToken(scope) {
    const auth = Buffer.from(`${creds.client_id}:${creds.client_secret}`)
        .toString('base64');
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope) {
        form.set('scope', scope);
    }
    const r = await fetch(`${base}/oauth2/token`, {
        method: 'POST', body: form,
        headers: { authorization: `Basic ${auth}` },
    });
    return { status: r.status, json: await r.json() };
}
