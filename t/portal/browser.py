"""The developer portal's journey in a real headless Chromium (Debian's
chromium and chromium-driver, driven by python3-selenium), against the
gateway that t/portal/browser.t starts:

  /usr/bin/python3 t/portal/browser.py PORT DIR SHOTS

sign up -> confirm the email -> an operator approves -> the developer
makes an API key (copy button) -> calls GET /v1/accounts with it from
the try-it console (Swagger UI) -> the call is in the usage chart.  A
screenshot of each step goes to SHOTS; each check is a JSON line for the
.t (portal_client.check)."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from portal_client import check  # noqa

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

PORT = int(sys.argv[1])
DIR = sys.argv[2]
SHOTS = sys.argv[3]
BASE = 'http://127.0.0.1:%d' % PORT
CREDS = json.load(open(os.path.join(DIR, 'conf/demo/credentials.json')))
OPERATOR = CREDS['portal_admin']
EMAIL = 'ada@lovelace-pay.example'
PASSWORD = 'analytical engine 1843'

os.makedirs(SHOTS, exist_ok=True)

opts = webdriver.ChromeOptions()
opts.binary_location = '/usr/bin/chromium'
for a in ('--headless=new', '--no-sandbox', '--disable-gpu',
          '--disable-dev-shm-usage', '--window-size=1280,900',
          '--lang=en-US', '--no-first-run', '--disable-extensions',
          '--disable-background-networking', '--disable-sync',
          '--user-data-dir=' + os.path.join(SHOTS, 'profile')):
    opts.add_argument(a)
opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'),
                          options=opts)
wait = WebDriverWait(driver, 30)
step = [0]
csp_errors = []


def shot(name):
    step[0] += 1
    path = os.path.join(SHOTS, '%02d-%s.png' % (step[0], name))
    driver.save_screenshot(path)
    return path


def console():
    try:
        for e in driver.get_log('browser'):
            if 'Content Security Policy' in e.get('message', ''):
                csp_errors.append(e['message'])
    except Exception:       # noqa: a driver without logs
        pass


def go(path):
    driver.get(BASE + path)
    console()


def fill(el_id, value):
    el = driver.find_element(By.ID, el_id)
    el.clear()
    el.send_keys(value)


def submit_by(css):
    driver.find_element(By.CSS_SELECTOR, css).click()
    console()


def sign_in(name, password):
    go('/portal/login')
    fill('login', name)
    fill('password', password)
    submit_by('form[action="/portal/login"] button[type=submit]')


def sign_out():
    submit_by('form[action="/portal/logout"] button')
    wait.until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, 'main.landing')))


def page_has(text):
    try:
        wait.until(lambda d: text in d.page_source)
        return True
    except Exception:       # noqa: the check says what is missing
        return False


try:
    # sign up
    go('/portal/signup')
    check(driver.find_element(By.CSS_SELECTOR, 'label[for=email]').text
          == 'Email', 'the sign-up form has labelled fields')
    fill('email', EMAIL)
    fill('org', 'Lovelace Pay')
    fill('password', PASSWORD)
    shot('signup')
    submit_by('form[action="/portal/signup"] button[type=submit]')
    link = wait.until(EC.presence_of_element_located((By.ID, 'verify-link')))
    check('/portal/verify?token=' in link.get_attribute('href'),
          'sign-up shows the verification link')
    shot('check-your-email')
    link.click()
    check(page_has('is confirmed'), 'the link confirms the email')

    # the operator approves
    sign_in(OPERATOR['name'], OPERATOR['password'])
    wait.until(EC.url_contains('/portal/ops/'))
    card = driver.find_element(By.XPATH, '//section[contains(@class,"org")]'
                               '[h2="Lovelace Pay"]')
    shot('operator-pending')
    card.find_element(By.CSS_SELECTOR, 'button.primary').click()
    console()
    check(page_has('Lovelace Pay is approved: partner lovelace-pay'),
          'the operator approves the organisation')
    shot('operator-approved')
    sign_out()

    # the developer makes an API key
    sign_in(EMAIL, PASSWORD)
    wait.until(EC.url_matches(r'/portal/o/org_[0-9a-f]+/$'))
    org = re.search(r'/portal/o/(org_[0-9a-f]+)/', driver.current_url).group(1)
    check('lovelace-pay' in driver.page_source, 'the developer sees the '
          'partner')
    go('/portal/o/%s/credentials' % org)
    driver.find_element(By.ID, 'create-secret').click()
    console()
    secret = wait.until(EC.presence_of_element_located((By.ID, 'secret')))
    key = secret.get_attribute('value')
    check(re.match(r'^obk_[\w-]{43}$', key), 'a new API key is shown')
    copy = driver.find_element(By.CSS_SELECTOR, 'button[data-copy=secret]')
    copy.click()
    try:
        wait.until(lambda d: copy.text == 'Copied')
    except Exception:       # noqa: the check says what it saw
        pass
    check(copy.text == 'Copied', 'its copy button says it copied it',
          copy.text)
    shot('api-key-shown-once')
    go('/portal/o/%s/credentials' % org)
    check(key not in driver.page_source and key[:8] in driver.page_source,
          'the list shows its hint only')
    shot('credentials')

    # try it: Swagger UI, Authorize with the key, GET /v1/accounts
    go('/portal/o/%s/try' % org)
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR,
                                           'button.authorize'))).click()
    field = wait.until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, '.auth-container input[type=text], '
                          '.auth-container input[type=password]')))
    # pasted from the clipboard the copy button filled
    field.send_keys(Keys.CONTROL, 'v')
    check(field.get_attribute('value') == key, 'the copy button put the key '
          'in the clipboard: pasted into Authorize',
          field.get_attribute('value')[:8])
    if field.get_attribute('value') != key:
        field.clear()
        field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, '.auth-btn-wrapper '
                        'button.authorize').click()
    driver.find_element(By.CSS_SELECTOR, '.auth-btn-wrapper '
                        'button.btn-done').click()
    op = wait.until(EC.element_to_be_clickable(
        (By.ID, 'operations-accounts-listAccounts')))
    op.find_element(By.CSS_SELECTOR, '.opblock-summary-control').click()
    execute = wait.until(EC.element_to_be_clickable(
        (By.CSS_SELECTOR, '#operations-accounts-listAccounts '
                          'button.execute')))
    execute.click()
    status = wait.until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, '#operations-accounts-listAccounts '
                          '.live-responses-table tbody .response-col_status')))
    console()
    check(status.text.strip().startswith('200'),
          'the try-it console calls GET /v1/accounts with the key: 200',
          status.text)
    body = driver.find_element(By.CSS_SELECTOR,
                               '#operations-accounts-listAccounts '
                               '.live-responses-table .microlight').text
    check('62220210' in body, 'and shows the partner\'s sandbox account',
          body[:300])
    driver.execute_script('arguments[0].scrollIntoView()', status)
    shot('try-it')

    # a few more calls of other products, and a refused one, for the
    # charts
    import http.client
    for method, path, n in (('GET', '/v1/payments', 3),
                            ('GET', '/v1/statements', 2),
                            ('GET', '/v1/escrows', 2),
                            ('POST', '/v1/payments', 1)):
        for _ in range(n):
            conn = http.client.HTTPConnection('127.0.0.1', PORT, timeout=30)
            conn.request(method, path, body='{}' if method == 'POST'
                         else None, headers={'X-API-Key': key})
            conn.getresponse().read()
            conn.close()

    # usage
    go('/portal/o/%s/usage' % org)
    chart = driver.find_element(By.ID, 'calls-chart')
    check(chart.is_displayed(), 'the usage page draws the calls chart')
    bars = driver.find_elements(By.CSS_SELECTOR, '#calls-chart '
                                'rect.bar[data-product=accounts]')
    check(bars and int(bars[-1].get_attribute('data-calls')) >= 1,
          'the call is in the usage chart (accounts, today)',
          [b.get_attribute('data-date') for b in bars])
    quota = driver.find_elements(By.CSS_SELECTOR, '#quota-chart rect.bar'
                                 '[data-name="accounts (today)"]')
    check(quota and int(quota[0].get_attribute('data-value')) >= 1,
          'the accounts quota of today counts the call')
    driver.set_window_size(1280, 1700)
    shot('usage')

    # phone width
    driver.set_window_size(390, 844)
    go('/portal/o/%s/usage' % org)
    shot('usage-phone')
    width = driver.execute_script('return document.documentElement'
                                  '.scrollWidth')
    check(width <= 400, 'at phone width the page does not scroll sideways',
          width)

    console()
    check(not csp_errors, 'no Content-Security-Policy violation in the '
          'console', csp_errors[:3])
except Exception as e:          # noqa: a failed step is a failed check
    try:
        shot('failure')
    except Exception:
        pass
    check(False, 'the journey ran to its end', repr(e)[:1500])
finally:
    driver.quit()
