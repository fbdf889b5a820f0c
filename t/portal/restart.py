"""After t/portal/security.t restarts the gateway: what the portal and the
registry kept (accounts, organisations, sessions, credentials).

  python3 t/portal/restart.py PORT DIR SESSION KEY"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from portal_client import Client, check, api  # noqa

PORT = int(sys.argv[1])
SESSION, KEY = sys.argv[3], sys.argv[4]

c = Client(PORT, '127.0.0.20')
c.cookies['obp_session'] = SESSION
res = c.get('/portal/')
loc = res.header('location') or ''
check(res.status == 303 and re.match(r'^/portal/o/org_[0-9a-f]{16}/$', loc),
      'after a restart the session still opens the organisation', res.status)
res = c.get(loc)
check(res.status == 200 and 'acme-payments-ltd' in res.body and
      'badge active' in res.body, 'whose partner is still active')
st, _ = api(PORT, 'GET', '/v1/accounts', {'X-API-Key': KEY})
check(st == 200, 'and whose API key still works', st)

page = Client(PORT, '127.0.0.21')
tok = page.get('/portal/login').csrf()
res = page.post('/portal/login', {'csrf': tok, 'login': 'dev@acme.example',
                                  'password': 'correct horse battery staple'})
check(res.status == 303, 'the developer still signs in', res.status)
