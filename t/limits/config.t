# nginx -t refuses a wrong openbank_state interval and a misplaced
# openbank_metrics, with the file and line; good forms are accepted.

use lib 't/lib';
use OpenBank::Test;

our $zone = "openbank_zone openbank 1m;\n";

run_tests();

__DATA__

=== TEST 1: an interval that is not a time is refused
--- http_config eval
$::zone . q{openbank_state $TEST_NGINX_SERVROOT/state interval=soon;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid interval "soon": expected a time of at least 10ms, such as "1s" in \S+nginx\.conf:\d+/


=== TEST 2: an interval under 10ms is refused
--- http_config eval
$::zone . q{openbank_state $TEST_NGINX_SERVROOT/state interval=5ms;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid interval "5ms"/


=== TEST 3: an unknown parameter is refused
--- http_config eval
$::zone . q{openbank_state $TEST_NGINX_SERVROOT/state every=1s;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "every=1s": expected "interval=TIME" in \S+nginx\.conf:\d+/


=== TEST 4: three arguments are refused
--- http_config eval
$::zone . q{openbank_state $TEST_NGINX_SERVROOT/state interval=1s x;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid number of arguments in "openbank_state" directive/


=== TEST 5: openbank_metrics needs the zone
--- http_config
--- config
location = /metrics { openbank_metrics; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_metrics" directive requires "openbank_zone" before it in \S+nginx\.conf:\d+/


=== TEST 6: openbank_metrics takes no argument
--- http_config eval: $::zone
--- config
location = /metrics { openbank_metrics on; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid number of arguments in "openbank_metrics" directive/


=== TEST 7: openbank_metrics is a location's only handler
--- http_config eval: $::zone
--- config
location = /metrics { openbank_metrics; openbank_metrics; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_metrics" directive is duplicate/


=== TEST 8: a good interval is accepted, the metrics answer
--- http_config eval
$::zone . q{openbank_state $TEST_NGINX_SERVROOT/state interval=250ms;}
--- config
location = /metrics { openbank_metrics; }
--- request
GET /metrics
--- error_code: 200
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like
^# HELP openbank_requests_total .*openbank_zone_records\{zone="openbank"\} \d+
--- no_error_log
[error]


=== TEST 9: POST to /metrics is not allowed
--- http_config eval: $::zone
--- config
location = /metrics { openbank_metrics; }
--- request
POST /metrics
x
--- error_code: 405
