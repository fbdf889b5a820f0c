"""The developer portal's webhooks page, over HTTP against the gateway
that t/portal/webhooks.t starts:

  python3 t/portal/webhooks.py PORT DIR

Each check is one JSON line for the .t (portal_client.check)."""

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from portal_client import Client, check, admin  # noqa

PORT = int(sys.argv[1])
DIR = sys.argv[2]
CREDS = json.load(open(os.path.join(DIR, 'conf/demo/credentials.json')))
ADMIN_KEY = CREDS['admin_key']
OPERATOR = CREDS['portal_admin']
PASSWORD = 'correct horse battery staple'


# a receiver of the deliveries, on a free loopback port
got = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        got.append((self.path, {k.lower(): v for k, v in
                                self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


server = http.server.HTTPServer(('127.0.0.1', 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
HOOK = 'http://127.0.0.1:%d/hooks/acme' % server.server_address[1]


def standard_ok(secret, h, body):
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, id.timestamp.body))"""
    key = base64.b64decode(secret[6:])
    mac = hmac.new(key, ('%s.%s.' % (h['webhook-id'],
                                     h['webhook-timestamp'])).encode()
                   + body, hashlib.sha256).digest()
    return h.get('webhook-signature') == 'v1,' + base64.b64encode(mac).decode()


def login(c, name, password):
    page = c.get('/portal/login')
    return c.post('/portal/login', {'csrf': page.csrf(), 'login': name,
                                    'password': password})


def developer(email, org):
    c = Client(PORT)
    page = c.get('/portal/signup')
    res = c.post('/portal/signup', {'csrf': page.csrf(), 'email': email,
                                    'org': org, 'password': PASSWORD})
    m = re.search(r'id="verify-link" href="([^"]+)"', res.body)
    c.get(re.sub(r'^https?://[^/]+', '', m.group(1).replace('&amp;', '&')))
    res = login(c, email, PASSWORD)
    m = re.match(r'/portal/o/(org_[0-9a-f]+)/', res.header('location') or '')
    return c, m and m.group(1)


op = Client(PORT)
login(op, OPERATOR['name'], OPERATOR['password'])


def approve(org_id):
    page = op.get('/portal/ops/')
    return op.post('/portal/ops/orgs/%s/approve' % org_id,
                   {'csrf': page.csrf(), 'plan': 'sandbox',
                    'scopes': ['accounts', 'payments']})


c, acme = developer('dev@acme.example', 'Acme Payments Ltd')
base = '/portal/o/%s/webhooks' % acme
res = c.get(base)
check(res.status == 200 and 'waiting for the bank' in res.body,
      'before approval the page waits', res.status)
approve(acme)
partner = 'acme-payments-ltd'

res = c.get(base)
check(res.status == 200 and 'No endpoint yet' in res.body and
      'coming' not in res.body, 'the page: no endpoint yet', res.body[-800:])
check('id="url"' in res.body and 'id="events"' in res.body,
      'and a form to add one')

# errors in words, nothing made
res = c.submit(base, base + '/new', {'url': 'http://example.com/h',
                                      'events': 'payment.*'})
check(res.status == 400 and 'The endpoint was not added' in res.body and
      'https' in res.body, 'an http:// URL is refused, in words',
      (res.status, res.body[-800:]))
check('value="http://example.com/h"' in res.body,
      'and the form keeps what was typed')
res = c.submit(base, base + '/new', {'url': 'https://example.com/h',
                                      'events': 'payment.exploded'})
check(res.status == 400 and 'neither an event type' in res.body,
      'an unknown event type is refused, in words', res.status)
res = c.submit(base, base + '/new', {'url': HOOK, 'events': ' '})
check(res.status == 400 and 'at least one event type' in res.body,
      'no event at all is refused, in words', res.status)
st, j = admin(PORT, ADMIN_KEY, 'GET',
              '/admin/partners/%s/webhook-endpoints' % partner)
check(st == 200 and j['data'] == [], 'none of them made an endpoint', j)

# added: the secret shown once, with its copy button
res = c.submit(base, base + '/new', {'url': HOOK,
                                      'events': 'payment.* escrow.released'})
m = re.search(r'id="secret" readonly value="(whsec_[A-Za-z0-9+/]{43}=)"',
              res.body)
check(res.status == 200 and m and 'data-copy="secret"' in res.body,
      'a new endpoint: its signing secret with a copy button',
      res.body[-1500:])
check(res.header('cache-control') == 'no-store', 'on a page no cache keeps')
secret = m and m.group(1)
ep = re.search(r'<code>(we_[0-9a-f]{16})</code>', res.body)
ep = ep and ep.group(1)

st, j = admin(PORT, ADMIN_KEY, 'GET',
              '/admin/partners/%s/webhook-endpoints' % partner)
check(st == 200 and [e['id'] for e in j['data']] == [ep] and
      j['data'][0]['events'] == ['payment.*', 'escrow.released'],
      'the registry partner has it, with its events', j)

res = c.get(base)
row = re.search(r'<tr data-endpoint="%s">(.*?)</tr>' % ep, res.body or '',
                re.S)
check(row and HOOK in row.group(1) and 'payment.*' in row.group(1) and
      'escrow.released' in row.group(1) and 'enabled' in row.group(1),
      'the list shows its URL, events and status', res.body[-1500:])
check(secret and secret not in res.body and 'whsec_' not in res.body,
      'and never the secret again')

# a test ping, signed with the secret shown
res = c.submit(base, '%s/%s/test' % (base, ep), {})
check(res.status == 200 and 'test ping' in res.body,
      'a test ping is sent', (res.status, res.body[-800:]))
for _ in range(100):
    if got:
        break
    time.sleep(0.1)
check(got and got[0][0] == '/hooks/acme' and
      json.loads(got[0][2])['type'] == 'ping', 'the ping arrives', got)
check(got and secret and standard_ok(secret, got[0][1], got[0][2]),
      'signed with the secret the page showed')

# an endpoint whose deliveries fail is shown failing
res = c.submit(base, base + '/new', {'url': 'http://127.0.0.1:9/dead',
                                      'events': '*'})
dead = re.search(r'<code>(we_[0-9a-f]{16})</code>', res.body)
dead = dead and dead.group(1)
c.submit(base, '%s/%s/test' % (base, dead), {})
row = None
for _ in range(100):
    res = c.get(base)
    row = re.search(r'<tr data-endpoint="%s">(.*?)</tr>' % dead, res.body,
                    re.S)
    if row and 'badge failing' in row.group(1):
        break
    time.sleep(0.1)
check(row and 'badge failing' in row.group(1) and 'failing since' in
      row.group(1), 'an endpoint whose delivery failed is shown failing',
      row and row.group(1))
res = c.submit(base, '%s/%s/delete' % (base, dead), {})
check(res.status == 303, 'and deleted', res.status)

# CSRF: without, with a wrong or another session's token: refused
for name, form in (('without a token', {}),
                   ('with a wrong token', {'csrf': 'A' * 43}),
                   ('with another session\'s token',
                    {'csrf': Client(PORT).get('/portal/login').csrf()})):
    f = dict(form, url=HOOK + '/x', events='*')
    res = c.post(base + '/new', f)
    res2 = c.post('%s/%s/delete' % (base, ep), dict(form))
    check(res.status == 403 and res2.status == 403,
          'adding and deleting %s are refused' % name,
          (res.status, res2.status))
st, j = admin(PORT, ADMIN_KEY, 'GET',
              '/admin/partners/%s/webhook-endpoints' % partner)
check([e['id'] for e in j['data']] == [ep], 'and change nothing', j)

# isolation: another organisation sees and touches none of them
b, beta = developer('dev@beta.example', 'Beta Lending')
approve(beta)
res = b.get(base)
check(res.status == 404, 'another organisation\'s webhooks page is 404',
      res.status)
tok = b.get('/portal/o/%s/webhooks' % beta).csrf()
for what in ('test', 'delete'):
    r1 = b.post('%s/%s/%s' % (base, ep, what), {'csrf': tok})
    r2 = b.post('/portal/o/%s/webhooks/%s/%s' % (beta, ep, what),
                {'csrf': tok})
    check(r1.status == 404 and r2.status == 404,
          'another organisation\'s endpoint: %s is 404 by either URL' % what,
          (r1.status, r2.status))
res = b.get('/portal/o/%s/webhooks' % beta)
check(res.status == 200 and ep not in res.body,
      'nor is it on its own page')
n = len(got)
time.sleep(0.5)
check(len(got) == n, 'and no ping was sent for it')

# in Chinese
zh = Client(PORT, lang='zh')
login(zh, 'dev@acme.example', PASSWORD)
res = zh.get(base)
check(res.status == 200 and '添加端点' in res.body and '发送测试' in res.body,
      'the page in Chinese', res.body[-800:])

# deleted
res = c.submit(base, '%s/%s/delete' % (base, ep), {})
check(res.status == 303 and res.header('location') == base,
      'deleting sends back to the page', res.status)
res = c.get(base)
check('No endpoint yet' in res.body, 'which has none left')
res = c.submit(base, '%s/%s/delete' % (base, ep), {})
check(res.status == 404, 'a second delete is 404', res.status)

# the audit logs: the portal's and the gateway's
res = op.get('/portal/ops/audit')
check('webhook_endpoint.create' in res.body and
      'webhook_endpoint.delete' in res.body,
      'the portal\'s audit log has the changes')
st, j = admin(PORT, ADMIN_KEY, 'GET', '/admin/audit?limit=1000')
acts = [e['action'] for e in j['events'] if e['target'] == partner + '/' + ep]
check(acts == ['webhook_endpoint.create', 'webhook_endpoint.delete'],
      'and so has the gateway\'s', acts)

# the secret in no log and on no later page
logs = ''
for f in ('run/error.log', 'run/access.log'):
    logs += open(os.path.join(DIR, f), errors='replace').read()
check(secret and secret not in logs and 'whsec_' not in logs,
      'the secret is in no log')
later = c.get(base).body + op.get('/portal/ops/audit').body + \
    op.get('/portal/ops/partners').body
check(secret and secret not in later, 'nor on a later page')
