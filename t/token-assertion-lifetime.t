# openbank_assertion_lifetime 1h: an assertion whose exp is almost an hour
# ahead is accepted, and its jti stays used for all of that hour, not only
# for the default 5 minutes.  nginx runs under Debian's libfaketime, whose
# offset the test moves forward 50 minutes between the first use and the
# replay.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

my $lib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

plan skip_all => 'libfaketime is not installed' unless -f $lib;
plan skip_all => 'LD_PRELOAD belongs to ASan in this run'
    if $ENV{TEST_NGINX_ASAN};

my ($http, $config) = token_config(
    extra_http => "openbank_assertion_lifetime 1h;\n");
my $type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
my %form = ('Content-Type' => 'application/x-www-form-urlencoded');

sub grant ($assertion) {
    my $res = http_request('POST', '/oauth2/token', \%form,
        form_body(grant_type => 'client_credentials',
                  client_assertion_type => $type,
                  client_assertion => $assertion));
    my $json = eval { json_decode($res->body) } || {};
    return ($res->status, $json->{error_description} // '');
}

# libfaketime reads the offset from this file on every clock call
my $clock = servroot() . '-clock';
sub offset ($s) {
    open my $fh, '>', $clock or die "$clock: $!";
    print $fh "+${s}s\n";
    close $fh;
    select(undef, undef, undef, 0.2);   # nginx updates its time per event
}
offset(0);

{
    local $ENV{LD_PRELOAD} = $lib;
    local $ENV{FAKETIME_TIMESTAMP_FILE} = $clock;
    local $ENV{FAKETIME_NO_CACHE} = 1;
    local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = 1;
    start_nginx({ main_config => "env FAKETIME_TIMESTAMP_FILE;\n"
                                 . "env FAKETIME_NO_CACHE;\n"
                                 . "env FAKETIME_DONT_FAKE_MONOTONIC;",
                  http_config => $http, config => $config, workers => 2 });
}

my $now = time;
my $hour = assertion(kid => 'acme-ed',
                     claims => { iat => $now, exp => $now + 3500 });
my $short = assertion(kid => 'acme-ed',
                      claims => { iat => $now, exp => $now + 600 });

my ($status, $why) = grant($hour);
is($status, 200, 'an assertion with exp 58 minutes ahead gets a token')
    or diag $why;

offset(3000);

($status, $why) = grant($short);
is($status, 401, '50 minutes later, an assertion of exp +10 min has expired');
is($why, 'the assertion has expired or has no exp',
   'so the gateway\'s clock moved');

my @replays = map { [grant($hour)] } 1 .. 4;
is_deeply([ map { $_->[0] } @replays ], [401, 401, 401, 401],
          '50 minutes later, the first assertion is still refused by every '
          . 'worker');
is($replays[0][1], "the assertion's jti was already used", 'as a replay');

offset(0);
stop_nginx();
unlink $clock;

like(error_log_since(0), qr/replayed client assertion of "acme-erp"/,
     'the replays are logged');

done_testing();
