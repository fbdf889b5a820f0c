# The developer portal in a real browser: headless Chromium (Debian's
# chromium, chromium-driver, python3-selenium) runs the journey of
# t/portal/browser.py, sign-up to the call in the usage chart, and saves
# a screenshot of each step under the gateway's copy (screenshots/).

use lib 't/lib';
use OpenBank::Test;
require './t/portal/run.pl';

for my $need ('/usr/bin/chromium', '/usr/bin/chromedriver') {
    plan(skip_all => "no $need (make deps)") unless -x $need;
}

my $demo = portal_gateway('portal-browser');
my $shots = $demo->dir . '/screenshots';
run_python($demo, 't/portal/browser.py', $shots);

my @png = glob("$shots/*.png");
ok(@png >= 8, scalar(@png) . " screenshots in $shots");

$demo->stop;
$demo->check_log;
done_testing();
