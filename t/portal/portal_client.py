"""A browser-like HTTP client of the developer portal for t/portal/:
one cookie jar, forms with their CSRF token, a chosen source address
(the loopback has all of 127.0.0.0/8, so that the login back-off of one
address does not touch the others).  Results go to the Perl side of the
test as JSON lines (t/portal/run.pl reads them)."""

import html.parser
import http.client
import json
import re
import sys
import urllib.parse


class Page:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # [(lower name, value)]
        self.body = body

    def header(self, name):
        vals = [v for n, v in self.headers if n == name.lower()]
        return vals[0] if vals else None

    def headers_all(self, name):
        return [v for n, v in self.headers if n == name.lower()]

    def csrf(self):
        m = re.search(r'name="csrf" value="([^"]+)"', self.body)
        return m and m.group(1)


class Client:
    def __init__(self, port, source='127.0.0.1', lang=None):
        self.port = port
        self.source = source
        self.cookies = {}
        self.lang = lang

    def request(self, method, path, form=None, headers=None, body=None):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30,
                                          source_address=(self.source, 0))
        h = {'Host': '127.0.0.1:%d' % self.port}
        if self.cookies:
            h['Cookie'] = '; '.join('%s=%s' % kv for kv in
                                    self.cookies.items())
        if self.lang:
            h['Accept-Language'] = self.lang
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True)
            h['Content-Type'] = 'application/x-www-form-urlencoded'
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read().decode('utf-8', 'replace')
        hdrs = [(n.lower(), v) for n, v in r.getheaders()]
        conn.close()
        for n, v in hdrs:
            if n == 'set-cookie':
                name, _, rest = v.partition('=')
                value = rest.split(';', 1)[0]
                if 'Max-Age=0' in v or value == '':
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
        return Page(r.status, hdrs, data)

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, form, **kw):
        return self.request('POST', path, form=form, **kw)

    def submit(self, page_path, action, fields):
        """GETs page_path, then POSTs fields to action with its token."""
        page = self.get(page_path)
        form = dict(fields)
        form['csrf'] = page.csrf()
        return self.post(action, form)


class Scripts(html.parser.HTMLParser):
    """Every <script> with its src and content, and on* attributes."""
    def __init__(self):
        super().__init__()
        self.scripts = []
        self.handlers = []
        self.styles = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for n, _ in attrs:
            if n.startswith('on'):
                self.handlers.append((tag, n))
            if n == 'style':
                self.styles.append(tag)
        if tag == 'script':
            self._in = {'src': a.get('src'), 'text': ''}
            self.scripts.append(self._in)
        if tag == 'style':
            self.styles.append('style element')

    def handle_data(self, data):
        if self._in is not None:
            self._in['text'] += data

    def handle_endtag(self, tag):
        if tag == 'script':
            self._in = None


def inline_script(body):
    p = Scripts()
    p.feed(body)
    bad = [s for s in p.scripts if not s['src'] or s['text'].strip()]
    return bad, p.handlers, p.styles


_n = 0


def check(ok, name, diag=''):
    global _n
    _n += 1
    print(json.dumps({'ok': bool(ok), 'name': name, 'diag': str(diag)[:2000]}),
          flush=True)
    return bool(ok)


def admin(port, key, method, path, body=None):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    h = {'Authorization': 'Bearer ' + key}
    if body is not None:
        body = json.dumps(body)
        h['Content-Type'] = 'application/json'
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read().decode()
    conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def api(port, method, path, headers=None):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    data = r.read().decode()
    conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data
