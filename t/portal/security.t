# The developer portal over HTTP (t/portal/security.py): sign-up with the
# verification link on the page and in the log, approval by an operator,
# credentials shown once, keys uploaded with errors in words, rotation and
# deletion, suspension, the audit log, and each security rule of
# docs/portal.md: scrypt hashes (checked with hashlib and openssl kdf),
# the cookie's flags, CSRF tokens, the login back-off, isolation of
# organisations, the CSP without inline script, no secret in a log or a
# later page; and after a restart, the session, the partner and the key.

use lib 't/lib';
use OpenBank::Test;
require './t/portal/run.pl';

my $demo = portal_gateway('portal-security', tls => 1, chown => ['run']);
run_python($demo, 't/portal/security.py', $demo->tls_port);

# what a restart keeps: restart.py with the session and key security.py
# left in restart.args
my @args = split(' ', $demo->file('restart.args'));
is(scalar @args, 2, 'security.py left a session and a key');
$demo->stop;
ok(eval { $demo->start }, 'the gateway starts again') or diag($@);
run_python($demo, 't/portal/restart.py', @args);

$demo->stop;
$demo->check_log;
done_testing();
