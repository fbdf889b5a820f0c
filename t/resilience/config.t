# openbank_breaker's load-time checks: every bad value is an nginx -t
# error naming the file, the line and the value; a breaker no location
# uses is a warning; a location naming an undefined breaker is an error.

use lib 't/lib';
use OpenBank::Test;

run_tests();

__DATA__

=== TEST 1: a share over 100% is refused, with its file and line
--- http_config
openbank_zone openbank 1m;
openbank_breaker core failures=150%;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/invalid failures "150%": expected a share from 1% to 100%.* in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 2: a window of 0 is refused
--- http_config
openbank_zone openbank 1m;
openbank_breaker core window=0;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/invalid window "0": expected a time from 1s to 1h.* in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 3: an unknown key is refused
--- http_config
openbank_zone openbank 1m;
openbank_breaker core failures=50% treshold=3;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/invalid parameter "treshold=3".* in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 4: a slow call needs a time and a share
--- http_config
openbank_zone openbank 1m;
openbank_breaker core slow=2s;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/invalid slow "2s": expected a time up to 1h and a share.* in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 5: minimum and probes are whole numbers of calls, at least 1
--- http_config
openbank_zone openbank 1m;
openbank_breaker core probes=0;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/invalid probes "0": expected a number of calls from 1 to 100000.* in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 6: open=0s is refused
--- http_config
openbank_zone openbank 1m;
openbank_breaker core open=0s;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/invalid open "0s": expected a time from 1s to 1h.* in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 6b: a minimum that is not a number is refused
--- http_config
openbank_zone openbank 1m;
openbank_breaker core minimum=x;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log
invalid minimum "x"

=== TEST 7: a parameter given twice is refused
--- http_config
openbank_zone openbank 1m;
openbank_breaker core failures=50% failures=60%;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log
parameter "failures=60%" is duplicate

=== TEST 8: a breaker defined twice is refused
--- http_config
openbank_zone openbank 1m;
openbank_breaker core;
openbank_breaker core failures=20%;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/duplicate breaker "core", first defined in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 9: a location naming an undefined breaker is an error
--- http_config
openbank_zone openbank 1m;
--- config
location /t { openbank_breaker nowhere; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/unknown breaker "nowhere" in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:23/

=== TEST 10: parameters belong to the http level
--- http_config
openbank_zone openbank 1m;
openbank_breaker core;
--- config
location /t { openbank_breaker core open=5s; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log
invalid parameter "open=5s": a breaker is defined at the http level

=== TEST 11: a breaker needs the zone
--- http_config
openbank_breaker core;
--- config
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log
breaker "core" in

=== TEST 12: a breaker no location uses is a warning, and nginx starts
--- http_config
openbank_zone openbank 1m;
openbank_breaker spare failures=20%;
--- config
location /t { content_by_lua_block { ngx.say("up") } }
--- request
GET /t
--- response_body
up
--- error_log eval
qr/\[warn\].*breaker "spare" in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20 is used by no location/

=== TEST 13: a breaker a location uses gives no warning
--- http_config
openbank_zone openbank 1m;
openbank_breaker core failures=20% slow=1500ms:80% window=1m minimum=5 open=10s probes=1;
--- config
location /t { openbank_breaker core; content_by_lua_block { ngx.say("up") } }
--- request
GET /t
--- response_body
up
--- no_error_log
is used by no location
[error]

=== TEST 14: a concurrency limit needs its number of calls
--- http_config
openbank_zone openbank 1m;
openbank_concurrency core;
--- config
location /t { openbank_concurrency core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/"openbank_concurrency" directive needs the number of calls in flight it allows in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 15: a number of calls of 0 is refused
--- http_config
openbank_zone openbank 1m;
openbank_concurrency core 0;
--- config
location /t { openbank_concurrency core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/invalid number of calls "0": expected 1 to 1000000 in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 16: a share over 100% is refused
--- http_config
openbank_zone openbank 1m;
openbank_concurrency core 200 per_partner=150%;
--- config
location /t { openbank_concurrency core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/invalid per_partner "150%": expected a share from 1% to 100%.* in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 17: an unknown key is refused
--- http_config
openbank_zone openbank 1m;
openbank_concurrency core 200 per_client=25%;
--- config
location /t { openbank_concurrency core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log
invalid parameter "per_client=25%": expected "per_partner="

=== TEST 18: a location naming an undefined limit is an error
--- http_config
openbank_zone openbank 1m;
--- config
location /t { openbank_concurrency nowhere; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/unknown concurrency limit "nowhere" in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:23/

=== TEST 19: a limit defined twice is refused
--- http_config
openbank_zone openbank 1m;
openbank_concurrency core 10;
openbank_concurrency core 20;
--- config
location /t { openbank_concurrency core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/duplicate concurrency limit "core", first defined in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20/

=== TEST 20: a location names one limit once
--- http_config
openbank_zone openbank 1m;
openbank_concurrency core 10;
--- config
location /t { openbank_concurrency core; openbank_concurrency core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log
"openbank_concurrency" directive is duplicate

=== TEST 21: a limit no location uses is a warning, and nginx starts
--- http_config
openbank_zone openbank 1m;
openbank_concurrency spare 10 per_partner=25%;
--- config
location /t { content_by_lua_block { ngx.say("up") } }
--- request
GET /t
--- response_body
up
--- error_log eval
qr/\[warn\].*concurrency limit "spare" in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:20 is used by no location/

=== TEST 22: a server does not name a breaker: it would guard the operators' endpoints too
--- http_config
openbank_zone openbank 1m;
openbank_breaker core;
--- config
openbank_breaker core;
location /t { openbank_breaker core; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/"openbank_breaker" directive is not allowed here in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:24/
