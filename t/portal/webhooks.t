# The developer portal's webhooks page over HTTP (t/portal/webhooks.py):
# an endpoint added with its signing secret shown once (and never on a
# later page or in a log), listed with its events and status, pinged (the
# ping arrives signed with that secret), deleted; errors in words; CSRF
# refused; another organisation's endpoints 404 by either URL; in Chinese.

use lib 't/lib';
use OpenBank::Test;
require './t/portal/run.pl';

my $demo = portal_gateway('portal-webhooks');
run_python($demo, 't/portal/webhooks.py');
$demo->stop;
$demo->check_log;
done_testing();
