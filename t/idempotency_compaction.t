# The idempotency journal is compacted while the gateway runs: after more
# than 4 MiB of answers (and more than the journal held after the last
# compaction), a worker rewrites it from the zone; writes of every worker
# go on into the new journal, and every answer is still replayed after a
# restart.  The bank here is a trivial upstream, to be quick.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use HTTP::Tiny;
use POSIX qw(_exit);

my $pad = 'x' x 3500;
my $gw = OpenBank::Gateway->new('idem-compact', edit => sub {
    my $c = shift;
    $c =~ s/server  unix:run\/bank\.sock;/server  unix:run\/trivial.sock;/
        or die;
    $c =~ s/(    # The sandbox bank, in Lua on SQLite)/    server {
        listen  unix:run\/trivial.sock;
        location \/ {
            default_type  application\/json;
            return  201 '{"id":"\$request_id","pad":"$pad"}';
        }
    }

$1/ or die;
    return $c;
});
$gw->start;

my $key = OpenBank::Gateway::creds()->{api_key};
my $url = $gw->base . '/v1/payments';

# 4 clients, 320 keys each: about 4.7 MB of answers
my @kids;
for my $c (1 .. 4) {
    my $pid = fork // die;
    if ($pid == 0) {
        my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 30);
        my $bad = 0;
        for my $i (1 .. 320) {
            my $r = $http->post($url, { content => "{\"n\":$i}", headers => {
                'X-API-Key' => $key, 'Idempotency-Key' => "c$c-$i",
                'Content-Type' => 'application/json' } });
            $bad++ if $r->{status} != 201;
        }
        _exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}
my $fails = 0;
for (@kids) { waitpid $_, 0; $fails++ if $? }
is($fails, 0, '1280 POSTs with new keys: all 201');

like($gw->error_log, qr/idempotency journal compacted to \d+ bytes/,
     'the journal was compacted while running');

my $r = $gw->post('/v1/payments', '{"n":1}', 'Idempotency-Key' => 'c1-1');
is($r->{headers}{'idempotent-replayed'}, 'true', 'an early key is replayed');
my $first = $r->{content};

$gw->stop;
$gw->start;
like($gw->error_log, qr/1280 idempotency records restored/,
     'after a restart, every answer is restored');
for my $k ('c1-1', 'c2-160', 'c3-320', 'c4-300') {
    my ($c, $i) = $k =~ /^c(\d)-(\d+)$/;
    $r = $gw->post('/v1/payments', "{\"n\":$i}", 'Idempotency-Key' => $k);
    is($r->{headers}{'idempotent-replayed'}, 'true', "$k replayed");
}
is($gw->post('/v1/payments', '{"n":1}', 'Idempotency-Key' => 'c1-1')
       ->{content}, $first, 'with its first answer');
$gw->stop;
$gw->check_log;

done_testing();
