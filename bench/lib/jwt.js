// A peer of the gateway's token check for the benchmark (the scenario
// token-njs, docs/benchmarks.md): an access token verified in njs, the
// NGINX OSS way, by auth_request to a location whose js_content checks it
// with njs's WebCrypto.  It checks what the gateway checks of a token: the
// header (alg PS256, typ at+jwt, the key's kid), the signature, iss, aud,
// exp and nbf, and the scope.  njs (0.7) keeps nothing from one request
// to the next, so the key (its SPKI in base64, $jwt_spki) is imported by
// each request.

function deny(r) {
    r.return(401);
}

function part(s) {
    return JSON.parse(Buffer.from(s, 'base64url').toString());
}

function verify(r) {
    var auth = r.headersIn.Authorization || '';
    var m = auth.match(/^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/);
    var v = r.variables;
    var header, claims;

    if (!m) {
        return deny(r);
    }

    try {
        header = part(m[1]);
        claims = part(m[2]);
    } catch (e) {
        return deny(r);
    }

    if (header.alg !== 'PS256' || header.typ !== 'at+jwt'
        || header.kid !== v.jwt_kid)
    {
        return deny(r);
    }

    crypto.subtle.importKey('spki', Buffer.from(v.jwt_spki, 'base64'),
                            { name: 'RSA-PSS', hash: 'SHA-256' },
                            false, ['verify'])
    .then(function (key) {
        return crypto.subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, key,
                                    Buffer.from(m[3], 'base64url'),
                                    m[1] + '.' + m[2]);
    })
    .then(function (good) {
        var now = Math.floor(Date.now() / 1000);

        if (!good || claims.iss !== v.jwt_iss || claims.aud !== v.jwt_iss
            || typeof claims.exp !== 'number' || claims.exp <= now
            || (claims.nbf !== undefined
                && (typeof claims.nbf !== 'number' || claims.nbf > now))
            || typeof claims.scope !== 'string'
            || claims.scope.split(' ').indexOf(v.jwt_scope) < 0)
        {
            return deny(r);
        }

        r.return(204);
    })
    .catch(function () {
        deny(r);
    });
}

export default { verify };
