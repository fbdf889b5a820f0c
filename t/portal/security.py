"""The developer portal's flows and each security rule of docs/portal.md,
over HTTP against the gateway that t/portal/security.t starts:

  python3 t/portal/security.py PORT DIR TLS_PORT   (DIR: the gateway's
                                                   copy)

Each check is one JSON line for the .t (portal_client.check)."""

import base64
import hashlib
import http.client
import json
import os
import re
import sqlite3
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from portal_client import Client, check, inline_script, admin, api  # noqa

PORT = int(sys.argv[1])
DIR = sys.argv[2]
TLS_PORT = int(sys.argv[3])
CREDS = json.load(open(os.path.join(DIR, 'conf/demo/credentials.json')))
ADMIN_KEY = CREDS['admin_key']
OPERATOR = CREDS['portal_admin']
DB = os.path.join(DIR, 'run/state/portal.sqlite3')
PASSWORD = 'correct horse battery staple'

pages_seen = []         # (path, Page) of every HTML page, for the CSP checks
secrets = [PASSWORD, OPERATOR['password']]


def seen(path, page):
    pages_seen.append((path, page))
    return page


def b64url_dec(s):
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


def signup(c, email, org, password=PASSWORD):
    page = seen('/portal/signup', c.get('/portal/signup'))
    return page, c.post('/portal/signup', {'csrf': page.csrf(),
                                           'email': email, 'org': org,
                                           'password': password})


def verify_link(page):
    m = re.search(r'id="verify-link" href="([^"]+)"', page.body)
    return m and m.group(1).replace('&amp;', '&')


def login(c, name, password):
    page = c.get('/portal/login')
    return c.post('/portal/login', {'csrf': page.csrf(), 'login': name,
                                    'password': password})


def path_of(url):
    return re.sub(r'^https?://[^/]+', '', url)


def developer(email, org, source='127.0.0.1'):
    """signs up, verifies, signs in: (client, org id)"""
    c = Client(PORT, source)
    _, res = signup(c, email, org)
    link = verify_link(res)
    c.get(path_of(link))
    res = login(c, email, PASSWORD)
    m = re.match(r'/portal/o/(org_[0-9a-f]+)/', res.header('location') or '')
    return c, m and m.group(1)


def operator(source='127.0.0.1'):
    c = Client(PORT, source)
    res = login(c, OPERATOR['name'], OPERATOR['password'])
    check(res.status == 303 and res.header('location') == '/portal/ops/',
          'the operator of credentials.json signs in', res.status)
    return c


def approve(op, org_id, scopes=('accounts', 'payments')):
    page = seen('/portal/ops/', op.get('/portal/ops/'))
    return op.post('/portal/ops/orgs/%s/approve' % org_id,
                   {'csrf': page.csrf(), 'plan': 'sandbox',
                    'scopes': list(scopes)})


# -- sign-up, verification, approval ------------------------------------

c = Client(PORT)
page = seen('/portal/', c.get('/portal/'))
check(page.status == 200 and 'Sign up' in page.body, 'the landing page')

_, res = signup(c, 'short@acme.example', 'Acme', 'eleven char')
check(res.status == 400 and 'at least 12 characters' in res.body,
      'a password of 11 characters is refused, in words', res.status)

_, res = signup(c, 'dev@acme.example', 'Acme Payments Ltd')
seen('/portal/signup (POST)', res)
link = verify_link(res)
check(res.status == 200 and link and '/portal/verify?token=' in link,
      'sign-up shows the verification link on the page', res.body[-600:])

log = open(os.path.join(DIR, 'run/error.log')).read()
check(link and ('verification link for dev@acme.example: ' + link) in log,
      'and writes it in the log')

row = sqlite3.connect(DB).execute(
    "SELECT password FROM users WHERE email = 'dev@acme.example'").fetchone()
m = re.match(r'^scrypt\$(\d+)\$(\d+)\$(\d+)\$([\w-]+)\$([\w-]+)$',
             row[0] if row else '')
check(m and int(m.group(1)) >= 16384, 'the password is kept as an scrypt '
      'hash', row)
if m:
    n, r, p = int(m.group(1)), int(m.group(2)), int(m.group(3))
    salt, key = b64url_dec(m.group(4)), b64url_dec(m.group(5))
    check(hashlib.scrypt(PASSWORD.encode(), salt=salt, n=n, r=r, p=p,
                         dklen=len(key), maxmem=64 << 20) == key,
          'which Python\'s hashlib.scrypt computes from the password')
    out = subprocess.run(['openssl', 'kdf', '-keylen', str(len(key)),
                          '-kdfopt', 'pass:' + PASSWORD, '-kdfopt',
                          'hexsalt:' + salt.hex(), '-kdfopt', 'n:%d' % n,
                          '-kdfopt', 'r:%d' % r, '-kdfopt', 'p:%d' % p,
                          'SCRYPT'], capture_output=True, text=True)
    check(out.stdout.strip().replace(':', '').lower() == key.hex(),
          'and so does openssl kdf SCRYPT', out.stderr)

res = login(c, 'dev@acme.example', PASSWORD)
check(res.status == 403 and 'Confirm your email' in res.body,
      'no sign-in before the email is confirmed', res.status)

res = c.get(path_of(link))
check(res.status == 200 and 'is confirmed' in res.body, 'the link confirms '
      'the email')
res = c.get(path_of(link))
check(res.status == 404, 'a second time it is refused', res.status)

res = login(c, 'dev@acme.example', PASSWORD)
loc = res.header('location') or ''
m = re.match(r'^/portal/o/(org_[0-9a-f]{16})/$', loc)
check(res.status == 303 and m, 'the developer signs in to the '
      'organisation\'s page', (res.status, loc))
acme = m and m.group(1)

cookie = [v for v in res.headers_all('set-cookie')
          if v.startswith('obp_session=')]
check(cookie and 'HttpOnly' in cookie[-1] and 'SameSite=Strict' in cookie[-1]
      and 'Path=/portal/' in cookie[-1], 'the session cookie is HttpOnly and '
      'SameSite=Strict', cookie)
check(cookie and 'Secure' not in cookie[-1], 'and not Secure over plain '
      'HTTP (it would not be sent back)', cookie)
secrets.append(c.cookies.get('obp_session'))

res = seen('/portal/o/acme/', c.get('/portal/o/%s/' % acme))
check(res.status == 200 and 'waiting for the bank' in res.body,
      'the organisation waits for approval', res.status)

res = c.get('/portal/ops/')
check(res.status == 404, 'a developer does not see the operators\' pages',
      res.status)

anon = Client(PORT)
res = anon.get('/portal/ops/')
check(res.status == 303 and res.header('location') == '/portal/login',
      'signed out, the operators\' pages send to the sign-in', res.status)
res = anon.get('/portal/o/%s/credentials' % acme)
check(res.status == 303, 'and so do an organisation\'s', res.status)

op = operator()
res = seen('/portal/ops/', op.get('/portal/ops/'))
check(res.status == 200 and 'Acme Payments Ltd' in res.body and acme in
      res.body, 'the operator sees the pending organisation')
res = approve(op, acme)
check(res.status == 200 and 'is approved: partner acme-payments-ltd' in
      res.body, 'and approves it with a plan and scopes', res.body[-800:])

st, p = admin(PORT, ADMIN_KEY, 'GET', '/admin/partners/acme-payments-ltd')
check(st == 200 and p.get('plan') == 'sandbox' and p.get('scopes') ==
      ['accounts', 'payments'] and p.get('source') == 'registry',
      'it is a registry partner with that plan and those scopes', p)

res = seen('/portal/o/acme/', c.get('/portal/o/%s/' % acme))
check(res.status == 200 and 'acme-payments-ltd' in res.body,
      'the developer sees the partner', res.status)

# -- credentials -----------------------------------------------------------

res = c.submit('/portal/o/%s/credentials' % acme,
               '/portal/o/%s/credentials/new' % acme, {'type': 'api_key'})
seen('credentials/new', res)
m = re.search(r'id="secret" readonly value="(obk_[\w-]{43})"', res.body)
check(res.status == 200 and m and 'data-copy="secret"' in res.body,
      'a new API key is shown with a copy button', res.body[-1500:])
key = m and m.group(1)
secrets.append(key)
check(res.header('cache-control') == 'no-store', 'on a page no cache keeps')

st, body = api(PORT, 'GET', '/v1/accounts', {'X-API-Key': key or 'x'})
check(st == 200, 'the key calls GET /v1/accounts', (st, body))

res = seen('/portal/o/acme/credentials', c.get('/portal/o/%s/credentials'
                                               % acme))
check(res.status == 200 and key and key[:8] in res.body and key not in
      res.body, 'the list shows its hint, never the key again')
cred_ids = re.findall(r'data-credential="(cred_\w+)"', res.body)
check(len(cred_ids) == 1, 'one credential listed', cred_ids)

for ty, field in (('client_secret', 'client_secret'),
                  ('hmac_secret', 'hmac_secret')):
    res = c.submit('/portal/o/%s/credentials' % acme,
                   '/portal/o/%s/credentials/new' % acme, {'type': ty})
    m = re.search(r'id="secret" readonly value="([\w-]{43})"', res.body)
    check(res.status == 200 and m, 'a new %s is shown once' % ty)
    if m:
        secrets.append(m.group(1))

# rotation: a new key beside the old one, both work until the old goes
res = seen('credentials', c.get('/portal/o/%s/credentials' % acme))
old = cred_ids[0] if cred_ids else 'cred_x'
res = c.post('/portal/o/%s/credentials/%s/rotate' % (acme, old),
             {'csrf': res.csrf()})
m = re.search(r'id="secret" readonly value="(obk_[\w-]{43})"', res.body)
new_key = m and m.group(1)
secrets.append(new_key)
st1, _ = api(PORT, 'GET', '/v1/accounts', {'X-API-Key': key or 'x'})
st2, _ = api(PORT, 'GET', '/v1/accounts', {'X-API-Key': new_key or 'x'})
check(new_key and st1 == 200 and st2 == 200, 'rotating makes a new API key '
      'and keeps the old one working', (st1, st2))

res = c.get('/portal/o/%s/credentials' % acme)
res = c.post('/portal/o/%s/credentials/%s/delete' % (acme, old),
             {'csrf': res.csrf()})
st1, _ = api(PORT, 'GET', '/v1/accounts', {'X-API-Key': key or 'x'})
st2, _ = api(PORT, 'GET', '/v1/accounts', {'X-API-Key': new_key or 'x'})
check(res.status == 303 and st1 == 401 and st2 == 200,
      'deleting the old one refuses it at once, the new one works',
      (res.status, st1, st2))

# keys: errors in words, a PEM key as a JWK with its RFC 7638 thumbprint
def upload(text, kid=''):
    return c.submit('/portal/o/%s/credentials' % acme,
                    '/portal/o/%s/credentials/keys' % acme,
                    {'keys': text, 'kid': kid})

res = upload('{"keys": [')
check('This JWKS is not valid JSON' in res.body, 'a broken JWKS: in words')
res = upload('{"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA"}]}')
check('The keys refused: ' in res.body and 'notice error' in res.body,
      'a JWKS the gateway refuses: the reason in words',
      re.findall(r'notice error[^<]*<', res.body))
res = upload('hello')
check('neither a JWKS' in res.body, 'neither JWKS nor PEM: in words')

tmp = tempfile.mkdtemp()
subprocess.run(['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
                'ec_paramgen_curve:P-256', '-out', tmp + '/k.pem'],
               check=True, capture_output=True)
private = open(tmp + '/k.pem').read()
res = upload(private)
check('This is a private key' in res.body, 'a private key is refused, in '
      'words')
check(private not in open(os.path.join(DIR, 'run/error.log')).read(),
      'and is in no log')
pub = subprocess.run(['openssl', 'pkey', '-in', tmp + '/k.pem', '-pubout'],
                     check=True, capture_output=True, text=True).stdout
res = upload(pub)
from cryptography.hazmat.primitives.serialization import load_pem_public_key
nums = load_pem_public_key(pub.encode()).public_numbers()
def b64(i):
    return base64.urlsafe_b64encode(i.to_bytes(32, 'big')).rstrip(b'=') \
        .decode()
jwk = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (b64(nums.x),
                                                        b64(nums.y))
thumb = base64.urlsafe_b64encode(hashlib.sha256(jwk.encode()).digest()) \
    .rstrip(b'=').decode()
check('The keys registered (%s)' % thumb in res.body,
      'a PEM public key is registered under its RFC 7638 thumbprint',
      re.findall(r'notice [a-z]+[^<]*<', res.body))

subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj',
                '/CN=acme', '-keyout', tmp + '/c.key', '-out', tmp + '/c.crt'],
               check=True, capture_output=True)
res = c.submit('/portal/o/%s/credentials' % acme,
               '/portal/o/%s/credentials/certificate' % acme,
               {'certificate': open(tmp + '/c.crt').read()})
fp = subprocess.run(['openssl', 'x509', '-in', tmp + '/c.crt', '-noout',
                     '-fingerprint', '-sha256'], capture_output=True,
                    text=True).stdout.split('=')[1].replace(':', '').strip()
check('The certificate registered (sha256:%s)' % fp.lower()[:16] in res.body,
      'a client certificate is registered (its fingerprint as the hint)',
      re.findall(r'notice [a-z]+[^<]*<', res.body))

# -- CSRF --------------------------------------------------------------------

st, before = admin(PORT, ADMIN_KEY, 'GET',
                   '/admin/partners/acme-payments-ltd/credentials')
res = c.post('/portal/o/%s/credentials/new' % acme, {'type': 'api_key'},
             headers={'Origin': 'http://evil.example'})
st, after = admin(PORT, ADMIN_KEY, 'GET',
                  '/admin/partners/acme-payments-ltd/credentials')
check(res.status == 403 and len(before['credentials']) ==
      len(after['credentials']), 'a cross-site POST without the CSRF token '
      'is refused, and makes nothing', res.status)
res = c.post('/portal/o/%s/credentials/new' % acme,
             {'type': 'api_key', 'csrf': 'A' * 43})
check(res.status == 403, 'a wrong CSRF token is refused', res.status)
other = Client(PORT)
tok = other.get('/portal/login').csrf()
res = c.post('/portal/o/%s/credentials/new' % acme,
             {'type': 'api_key', 'csrf': tok})
check(res.status == 403, 'another session\'s CSRF token is refused',
      res.status)
fresh = Client(PORT)
res = fresh.post('/portal/signup', {'email': 'x@y.example', 'org': 'Xy',
                                    'password': PASSWORD})
n = sqlite3.connect(DB).execute(
    "SELECT COUNT(*) FROM users WHERE email = 'x@y.example'").fetchone()[0]
check(res.status == 403 and n == 0, 'a sign-up POST without a token makes '
      'no account', (res.status, n))
res = fresh.post('/portal/login', {'login': 'dev@acme.example',
                                   'password': PASSWORD})
check(res.status == 403 and 'obp_session' not in str(res.headers),
      'a login POST without a token signs nobody in', res.status)

# -- isolation ---------------------------------------------------------------

b, beta = developer('dev@beta.example', 'Beta Lending')
approve(op, beta)
for sub in ('', 'credentials', 'usage', 'try', 'webhooks'):
    res = b.get('/portal/o/%s/%s' % (acme, sub))
    check(res.status == 404, 'another organisation\'s page %r is 404' % sub,
          res.status)
res = b.get('/portal/o/org_0123456789abcdef/credentials')
check(res.status == 404, 'so is one that does not exist', res.status)
tok = b.get('/portal/o/%s/credentials' % beta).csrf()
st, creds = admin(PORT, ADMIN_KEY, 'GET',
                  '/admin/partners/acme-payments-ltd/credentials')
victim = creds['credentials'][0]['id']
res = b.post('/portal/o/%s/credentials/%s/delete' % (acme, victim),
             {'csrf': tok})
res2 = b.post('/portal/o/%s/credentials/%s/delete' % (beta, victim),
              {'csrf': tok})
st, creds2 = admin(PORT, ADMIN_KEY, 'GET',
                   '/admin/partners/acme-payments-ltd/credentials')
check(res.status == 404 and res2.status == 404 and
      len(creds2['credentials']) == len(creds['credentials']),
      'nor can it delete another organisation\'s credential, by either URL',
      (res.status, res2.status))

# -- operators: suspend, plan, audit -----------------------------------------

res = seen('/portal/ops/partners', op.get('/portal/ops/partners'))
check(res.status == 200 and 'acme-payments-ltd' in res.body,
      'the operator lists the partners')
res = op.post('/portal/ops/partners/%s/status' % acme,
              {'csrf': res.csrf(), 'status': 'suspended'})
st, body = api(PORT, 'GET', '/v1/accounts', {'X-API-Key': new_key or 'x'})
check(res.status == 200 and st == 403 and isinstance(body, dict) and
      body.get('code') == 'partner_suspended', 'suspending refuses the '
      'partner\'s calls at once', (res.status, st, body))
res = seen('/portal/o/acme/', c.get('/portal/o/%s/' % acme))
check('suspended' in res.body, 'the developer sees the suspension')
res = op.post('/portal/ops/partners/%s/status' % acme,
              {'csrf': op.get('/portal/ops/partners').csrf(),
               'status': 'active'})
st, _ = api(PORT, 'GET', '/v1/accounts', {'X-API-Key': new_key or 'x'})
check(st == 200, 'reactivating lets it in again', st)

tok = op.get('/portal/ops/partners').csrf()
res = op.post('/portal/ops/partners/%s/plan' % acme, {'csrf': tok,
                                                      'plan': 'nosuchplan'})
check('notice error' in res.body, 'an unknown plan is refused, in words')

res = seen('/portal/ops/audit', op.get('/portal/ops/audit'))
for action in ('org.signup', 'user.verify', 'org.approve',
               'credential.create', 'credential.delete', 'partner.suspend',
               'partner.activate', 'partner.create'):
    check(res.status == 200 and ('<code>%s</code>' % action) in res.body,
          'the audit log shows %s' % action)

# -- pages: usage, try-it, webhooks, languages -------------------------------

res = seen('/portal/o/acme/usage', c.get('/portal/o/%s/usage' % acme))
check(res.status == 200 and 'id="calls-chart"' in res.body and
      'id="refusals-chart"' in res.body and 'id="quota-chart"' in res.body,
      'the usage page draws its three charts', res.status)
check('<table' not in res.body, 'as pictures, not tables')
bars = re.findall(r'<rect class="bar" data-date="([\d-]+)" '
                  r'data-product="accounts" data-calls="(\d+)"', res.body)
check(bars and int(bars[-1][1]) >= 4, 'the calls chart has today\'s calls '
      'with the keys', bars)
check(re.search(r'data-name="invalid_token" data-value="[1-9]', res.body)
      or re.search(r'data-name="partner_suspended" data-value="[1-9]',
                   res.body), 'the refusals chart has the refused calls',
      re.findall(r'data-name="[^"]*" data-value="\d+"', res.body))
check(re.search(r'data-name="accounts \(today\)" data-value="[1-9]',
                res.body), 'the quota chart counts today\'s calls')

res = seen('/portal/o/acme/try', c.get('/portal/o/%s/try' % acme))
check(res.status == 200 and 'swagger-ui-bundle.js' in res.body,
      'the try-it page loads Swagger UI', res.status)
js = c.get('/portal/vendor/swagger-ui/swagger-ui-bundle.js')
check(js.status == 200 and 'SwaggerUIBundle' in js.body[:200000],
      'from the npm package', js.status)
spec = c.get('/portal/openapi.yaml')
check(spec.status == 200 and ('- url: http://127.0.0.1:%d\n' % PORT) in
      spec.body, 'its OpenAPI document names this gateway as its server')

res = seen('/portal/o/acme/webhooks', c.get('/portal/o/%s/webhooks' % acme))
check(res.status == 200 and 'id="add-endpoint"' in res.body,
      'the webhooks page (t/portal/webhooks.t tests it)', res.status)

c.lang = 'zh-CN,zh;q=0.9'
res = c.get('/portal/o/%s/credentials' % acme)
c.lang = None
check('您的凭据' in res.body and '创建密钥' in res.body and
      'lang="zh-CN"' in res.body, 'the credentials page in Chinese')

# an operator made with portal/mkoperator signs in
ops_file = os.path.join(DIR, 'conf/demo/portal-operators')
line = subprocess.run([os.path.join(DIR, 'portal/mkoperator'), 'grace'],
                      input='hopper cobol 1959\n', capture_output=True,
                      text=True)
check(line.returncode == 0 and line.stdout.startswith('grace:scrypt$16384$'),
      'portal/mkoperator prints an operator\'s line', line.stderr)
with open(ops_file, 'a') as f:
    f.write(line.stdout)
g = Client(PORT, '127.0.0.9')
res = login(g, 'grace', 'hopper cobol 1959')
check(res.status == 303 and res.header('location') == '/portal/ops/',
      'and that operator signs in, without a reload', res.status)
bad = subprocess.run([os.path.join(DIR, 'portal/mkoperator'), 'x'],
                     input='short\n', capture_output=True, text=True)
check(bad.returncode == 2 and '12 characters' in bad.stderr,
      'mkoperator refuses a password of under 12 characters')

zh = Client(PORT, lang='zh-CN,zh;q=0.9,en;q=0.5')
res = zh.get('/portal/login')
check('lang="zh-CN"' in res.body and '登录' in res.body,
      'Accept-Language zh: the page is in Chinese')
res = zh.get('/portal/lang?to=en')
res = zh.get('/portal/login')
check('lang="en"' in res.body, 'the switch to English sticks')

# -- CSP, no inline script ---------------------------------------------------

for path, page in pages_seen:
    csp = page.header('content-security-policy') or ''
    ok = ("script-src 'self'" in csp and 'unsafe-inline' not in
          csp.split('script-src', 1)[1].split(';')[0] and
          "default-src 'none'" in csp)
    bad, handlers, styles = inline_script(page.body)
    check(ok and not bad and not handlers,
          'page %s: a CSP without inline script, and none in the HTML'
          % path, (csp, bad, handlers))
    check(not styles or path.endswith('/try'), 'page %s: no inline style'
          % path, styles)

# -- over TLS the cookies are Secure --------------------------------------

ctx = ssl.create_default_context(cafile=os.path.join(DIR, 'run/pki/ca.crt'))
conn = http.client.HTTPSConnection('127.0.0.1', TLS_PORT, context=ctx,
                                   timeout=30)
conn.request('GET', '/portal/login')
r = conn.getresponse()
tls_cookie = r.getheader('Set-Cookie') or ''
r.read()
conn.close()
check(r.status == 200 and tls_cookie.startswith('obp_session=') and
      '; Secure' in tls_cookie and 'HttpOnly' in tls_cookie and
      'SameSite=Strict' in tls_cookie, 'over TLS the session cookie is '
      'Secure, HttpOnly and SameSite=Strict', tls_cookie)

# -- signing out ends the session -------------------------------------------

s = Client(PORT)
res = login(s, 'dev@beta.example', PASSWORD)
sid = s.cookies.get('obp_session')
tok = s.get('/portal/o/%s/' % beta).csrf()
res = s.post('/portal/logout', {'csrf': tok})
gone = Client(PORT)
gone.cookies['obp_session'] = sid or 'x'
res2 = gone.get('/portal/o/%s/' % beta)
check(res.status == 303 and res2.status == 303 and
      res2.header('location') == '/portal/login', 'signing out ends the '
      'session: its cookie opens nothing', (res.status, res2.status))

# -- rejection ----------------------------------------------------------------

r, rho = developer('dev@rho.example', 'Rho Capital', source='127.0.0.40')
tok = op.get('/portal/ops/').csrf()
res = op.post('/portal/ops/orgs/%s/reject' % rho, {'csrf': tok})
check(res.status == 200 and 'Rho Capital is rejected' in res.body,
      'the operator rejects an organisation', res.status)
for sub in ('', 'credentials', 'usage', 'try'):
    res = r.get('/portal/o/%s/%s' % (rho, sub))
    check(res.status == 200 and 'did not approve Rho Capital' in res.body,
          'its developer sees the refusal on %r' % sub, res.status)
st, _ = admin(PORT, ADMIN_KEY, 'GET', '/admin/partners/rho-capital')
check(st == 404, 'and no registry partner was made', st)

# -- sign-ups: 10 an hour from one address ----------------------------------

sp = Client(PORT, '127.0.0.30')
codes = []
for i in range(11):
    _, res = signup(sp, 'spam%d@spam.example' % i, 'Spam %d' % i)
    codes.append(res.status)
n = sqlite3.connect(DB).execute(
    "SELECT COUNT(*) FROM users WHERE email LIKE 'spam%'").fetchone()[0]
check(codes == [200] * 10 + [429] and n == 10 and
      'Too many sign-ups' in res.body and res.header('retry-after'),
      'the 11th sign-up of the hour from one address is refused', codes)
_, res = signup(Client(PORT, '127.0.0.31'), 'ok@spam.example', 'Fine')
check(res.status == 200, 'another address signs up', res.status)

# -- back-off (last: it locks addresses) -----------------------------------

d, delta = developer('dev@delta.example', 'Delta', source='127.0.0.5')
x = Client(PORT, '127.0.0.6')
for i in range(5):
    res = login(x, 'dev@delta.example', 'wrong password %d!' % i)
check(res.status == 403, 'five wrong passwords are refused', res.status)
res = login(x, 'dev@delta.example', PASSWORD)
check(res.status == 429 and res.header('retry-after') and
      'obp_session=' not in str(res.headers_all('set-cookie')[-1:]) and
      'Too many' in res.body, 'the 6th try is refused even with the right '
      'password', (res.status, res.header('retry-after')))
y = Client(PORT, '127.0.0.7')
res = login(y, 'dev@delta.example', PASSWORD)
check(res.status == 429, 'the account is locked from another address too',
      res.status)
res = login(x, 'dev@acme.example', PASSWORD)
check(res.status == 429, 'and the address is locked for another account',
      res.status)
res = login(Client(PORT, '127.0.0.8'), 'dev@acme.example', PASSWORD)
check(res.status == 303, 'while that account signs in from elsewhere',
      res.status)

# -- no secret in a log or a later page --------------------------------------

logs = ''
for f in ('run/error.log', 'run/access.log'):
    logs += open(os.path.join(DIR, f), errors='replace').read()
for i, s in enumerate(secrets):
    check(s and s not in logs, 'secret %d (%s...) is in no log' %
          (i, (s or '')[:4]))
later = c.get('/portal/o/%s/credentials' % acme).body + \
    op.get('/portal/ops/audit').body + op.get('/portal/ops/partners').body
for i, s in enumerate(secrets):
    check(s and s not in later, 'secret %d is on no later page' % i)

# for t/portal/restart.py, after the .t restarts the gateway
with open(os.path.join(DIR, 'restart.args'), 'w') as f:
    f.write('%s %s\n' % (c.cookies.get('obp_session'), new_key))
