# The portal tests' Perl side: a copy of the project as `make run` serves
# it (OpenBank::Demo), with the portal's documents and static files, and a
# python3 script whose JSON lines are Test::More assertions.
#
#   require './t/portal/run.pl';
#   my $demo = portal_gateway('portal-security');
#   run_python($demo, 't/portal/security.py');

use strict;
use warnings;
use JSON::PP qw(decode_json);
use Test::More;
use OpenBank::Demo;

sub portal_gateway {
    my ($name, %o) = @_;
    my $demo = OpenBank::Demo->new($name, log_level => 'info', %o);
    my $root = $OpenBank::Gateway::ROOT;
    my $dir = $demo->dir;

    system('cp', '-r', "$root/docs", "$dir/") == 0 or die;
    symlink("$root/portal", "$dir/portal") or die "portal: $!";

    -f "$root/portal/node_modules/swagger-ui-dist/swagger-ui-bundle.js"
        or BAIL_OUT('no portal/node_modules: run make deps');

    if ($o{tls}) {
        is(system("make -s -C $dir -f $root/Makefile run/pki/mtls.conf "
                  . ">/dev/null"), 0, 'the demo PKI');
    }

    ok(eval { $demo->start }, 'the gateway starts with the portal')
        or BAIL_OUT("nginx does not start: $@");
    return $demo;
}

sub run_python {
    my ($demo, $script, @args) = @_;
    open(my $py, '-|', '/usr/bin/python3', $script, $demo->port, $demo->dir,
         @args) or die "$script: $!";
    binmode($py, ':encoding(UTF-8)');
    my $n = 0;
    while (my $line = <$py>) {
        my $r = eval { decode_json($line) };
        if (!$r) {
            diag($line);
            next;
        }
        $n++;
        ok($r->{ok}, $r->{name}) or diag($r->{diag});
    }
    close($py);
    is($?, 0, "$script ran to its end") or diag("exit status $?");
    ok($n > 0, "$script checked something");
}

1;
