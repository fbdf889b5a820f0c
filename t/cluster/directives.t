# openbank_cluster and openbank_cluster_degraded: bad values are refused
# by nginx -t with a clear message; the password file is read once and
# never logged; openbank_cluster_degraded alone is only a warning.

use lib 't/lib';
use OpenBank::Test;

our $zone = "openbank_zone openbank 1m;\n";

run_tests();

__DATA__

=== TEST 1: a host name is refused, not resolved
--- http_config eval
$::zone . q{openbank_cluster redis://redis.example.com:6379;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid Redis address "redis:\/\/redis.example.com:6379": an IP address and a port.*host names are not resolved/

=== TEST 2: a URL that is not redis:// is an unknown parameter
--- http_config eval
$::zone . q{openbank_cluster http://127.0.0.1:6379;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "http:\/\/127.0.0.1:6379"/

=== TEST 3: no address at all
--- http_config eval
$::zone . q{openbank_cluster timeout=50ms;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*openbank_cluster needs at least one redis:\/\/IP:PORT/

=== TEST 4: a bad port
--- http_config eval
$::zone . q{openbank_cluster redis://127.0.0.1:99999;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid Redis address "redis:\/\/127.0.0.1:99999"/

=== TEST 5: a bad timeout
--- http_config eval
$::zone . q{openbank_cluster redis://127.0.0.1:6379 timeout=fast;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid timeout "timeout=fast": from 1ms to 60s/

=== TEST 6: a zero timeout
--- http_config eval
$::zone . q{openbank_cluster redis://127.0.0.1:6379 timeout=0ms;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid timeout "timeout=0ms"/

=== TEST 7: bad nodes
--- http_config eval
$::zone . q{openbank_cluster redis://127.0.0.1:6379 nodes=0;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid nodes "nodes=0"/

=== TEST 8: a password file that is not there
--- http_config eval
$::zone . q{openbank_cluster redis://127.0.0.1:6379 password=nowhere.pass;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*nowhere\.pass/

=== TEST 9: an empty password file
--- http_config eval
$::zone . q{openbank_cluster redis://127.0.0.1:6379 password=redis.pass;}
--- user_files
>>> conf/redis.pass

--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*the password file ".*redis\.pass" is empty/

=== TEST 10: the directive twice
--- http_config eval
$::zone . qq{openbank_cluster redis://127.0.0.1:6379;\nopenbank_cluster redis://127.0.0.1:6380;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_cluster" directive is duplicate/

=== TEST 11: openbank_cluster in a server is refused
--- http_config eval
$::zone
--- config
openbank_cluster redis://127.0.0.1:6379;
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_cluster" directive is not allowed here/

=== TEST 12: a degraded mode that does not exist
--- http_config eval
$::zone . q{openbank_cluster_degraded nonce=maybe;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid value "nonce=maybe": nonce= is local or refuse/

=== TEST 13: a kind that does not exist
--- http_config eval
$::zone . q{openbank_cluster_degraded tokens=local;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "tokens=local": rate=, quota=, nonce=, idempotency= or registry=/

=== TEST 14: openbank_cluster_degraded twice
--- http_config eval
$::zone . qq{openbank_cluster_degraded rate=local;\nopenbank_cluster_degraded quota=refuse;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_cluster_degraded" directive is duplicate/

=== TEST 15: openbank_cluster_degraded alone: a warning, nothing changes
--- http_config eval
$::zone . q{openbank_cluster_degraded rate=refuse quota=refuse nonce=local idempotency=local;}
--- config
location = /t { return 200 "ok\n"; }
--- request
GET /t
--- error_code: 200
--- response_body
ok
--- error_log
openbank_cluster_degraded without openbank_cluster: ignored

=== TEST 16: every parameter, a password file, and the password never logged
--- http_config eval
$::zone . q{openbank_cluster redis://127.0.0.1:1 redis://[::1]:2 redis://127.0.0.2
    timeout=20ms nodes=3 password=redis.pass;
openbank_cluster_degraded rate=local quota=refuse nonce=local idempotency=refuse;}
--- user_files
>>> conf/redis.pass
s3cret-Pa55
--- config
location = /openbank/status { openbank_status; }
--- request
GET /openbank/status
--- error_code: 200
--- response_body_like: "cluster":\{"state":"(degraded|connected)","nodes":\[\{"address":"127.0.0.1:1","state":"(up|down)","slots":0\},\{"address":"\[::1\]:2".*\{"address":"127.0.0.2:6379"
--- no_error_log
s3cret-Pa55
