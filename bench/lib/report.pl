#!/usr/bin/perl
# Reads bench/run's raw rows on stdin, writes the TSV named by $ARGV[0] and
# prints the table.  Exits 1 if a scenario is INVALID or FAILED.
use strict; use warnings; use utf8;
binmode STDOUT, ':utf8';

my ($date, $nginx, $nproc, $tck, $wrk) = split /\t/, $ENV{BENCH_META};
my (@rows, %by);
while (<STDIN>) {
    chomp; my ($name, $basename, $refname, $peer, $st, @f) = split /\t/;
    my %r = (name => $name, basename => $basename, refname => $refname, peer => $peer,
             reference => $st eq 'reference', check => $f[-1] // '');
    if ($st eq 'measured' || $st eq 'reference') {
        my ($req, $dur, $p50, $p99, $bad, $first, $sockerr, $ticks) = @f;
        %r = (%r, req => $req, secs => $dur / 1e6, p50 => $p50 / 1e3, p99 => $p99 / 1e3,
              rps => $dur ? $req / ($dur / 1e6) : 0,
              cpu => $req ? $ticks * 1e6 / $tck / $req : 0);
        $r{check} = !$req     ? 'INVALID: no responses'
                  : $bad      ? sprintf('INVALID: %d of %d responses non-2xx (first: %s)', $bad, $req, $first)
                  : $sockerr  ? "INVALID: $sockerr socket errors/timeouts"
                  :             'ok';
    }
    push @rows, \%r; $by{$name} = \%r;
}
# Each row against proxy, and against its baseline: a plain proxy sent the
# same requests (the same wrk script), so that only the gateway differs.
sub ok { my $r = shift; $r && $r->{check} eq 'ok' ? $r : undef }
# A reference row (bench/run: a scenario's "measure") is the CPU time of
# one operation, outside nginx: a scenario naming one or more in its
# "reference" file is also shown beyond their sum, what the gateway
# costs besides them.
for my $r (grep { ok($_) && !$_->{reference} } @rows) {
    if (my $p = ok($by{proxy})) {
        $r->{vs_rps} = $r->{rps} / $p->{rps};
        $r->{vs_cpu} = $r->{cpu} - $p->{cpu};
    }
    if (my $b = ok($by{$r->{basename}})) {
        $r->{base_rps} = $r->{rps} / $b->{rps};
        $r->{base_cpu} = $r->{cpu} - $b->{cpu};
        my @x = map { ok($by{$_}) } split ' ', $r->{refname};
        if (@x && !grep { !defined } @x) {
            $r->{ref_cpu} = 0; $r->{ref_cpu} += $_->{cpu} for @x;
            $r->{ref_text} = join ' + ', map { sprintf 'one %s (%.1f µs)', $_->{name}, $_->{cpu} } @x;
            $r->{beyond_cpu} = $r->{base_cpu} - $r->{ref_cpu};
        }
    }
}

# Machine-readable copy.
my @cols = qw(scenario requests seconds req_per_s p50_ms p99_ms cpu_us_per_req
              req_per_s_vs_proxy cpu_us_per_req_vs_proxy
              baseline req_per_s_vs_baseline cpu_us_per_req_vs_baseline
              reference cpu_us_per_req_beyond_reference peer check);
open my $tsv, '>:utf8', $ARGV[0] or die "$ARGV[0]: $!";
print $tsv "# date: $date\n# nginx: $nginx\n# nproc: $nproc\n# CLK_TCK: $tck\n# wrk: $wrk\n";
print $tsv join("\t", @cols), "\n";
for my $r (@rows) {
    my @v = ($r->{name}, map { defined $r->{$_->[0]} ? sprintf($_->[1], $r->{$_->[0]}) : '' }
             [req => '%d'], [secs => '%.2f'], [rps => '%.0f'], [p50 => '%.3f'], [p99 => '%.3f'],
             [cpu => '%.1f'], [vs_rps => '%.3f'], [vs_cpu => '%+.1f']);
    my @b = ($r->{basename}, map { defined $r->{$_->[0]} ? sprintf($_->[1], $r->{$_->[0]}) : '' }
             [base_rps => '%.3f'], [base_cpu => '%+.1f']);
    my @x = ($r->{refname}, defined $r->{beyond_cpu} ? sprintf('%+.1f', $r->{beyond_cpu}) : '');
    print $tsv join("\t", @v, @b, @x, $r->{peer} // '-', $r->{check}), "\n";
}
close $tsv;

# The table.
my $fmt = "%-18s %7s %8s %6s | %6s %7s | %-17s %6s %7s | %s\n";
my $f = sub { my ($r, $k, $fm) = @_; defined $r->{$k} ? sprintf($fm, $r->{$k}) : '-' };
print "openbank bench: $date, $nginx, nproc $nproc, $wrk\n";
printf $fmt, '', '', '', 'CPU', 'vs proxy', '', 'vs baseline', '', '', '';
printf $fmt, 'scenario', 'req/s', 'p99', 'µs/req', 'req/s', 'CPU µs', 'baseline', 'req/s', 'CPU µs', 'check';
for my $r (@rows) {
    if ($r->{reference}) {    # no latency, nothing to compare
        printf $fmt, $r->{name}, $f->($r, 'rps', '%.0f'), '-', $f->($r, 'cpu', '%.1f'),
            '-', '-', '-', '-', '-', "$r->{check} (reference: CPU µs per operation)";
        next;
    }
    printf $fmt, $r->{name}, $f->($r, 'rps', '%.0f'), $f->($r, 'p99', '%.2fms'),
        $f->($r, 'cpu', '%.1f'), $f->($r, 'vs_rps', '%.2fx'), $f->($r, 'vs_cpu', '%+.1f'),
        $r->{basename} // '-', $f->($r, 'base_rps', '%.2fx'), $f->($r, 'base_cpu', '%+.1f'),
        $r->{check};
}
print "req/s, p99: seen by wrk.  CPU µs/req: user+sys CPU of the measured nginx's worker per request\n",
      "(upstream nginx and wrk not counted; the steadier figure).  vs proxy, vs baseline: req/s ratio,\n",
      "CPU µs difference; a baseline is a plain proxy sent the same requests by the same wrk script.\n";
printf "%s: CPU %+.1f µs/req over %s = %s %+.1f µs\n",
    $_->{name}, $_->{base_cpu}, $_->{basename}, $_->{ref_text}, $_->{beyond_cpu}
    for grep { defined $_->{beyond_cpu} } @rows;
# Peers (a scenario's "peer" file: how users do what our scenario does
# without the gateway), beside ours: our req/s over theirs, and CPU µs/req.
my @peers = grep { ok($_) && ($_->{peer} // '-') ne '-' && ok($by{$_->{peer}}) } @rows;
print "peers, the same requests: ours' req/s over the peer's, CPU µs/req of each:\n" if @peers;
printf "  %-18s %5.2fx the req/s of %-18s CPU %6.1f ours %7.1f the peer's\n",
    $_->{peer}, $by{$_->{peer}}{rps} / $_->{rps}, $_->{name}, $by{$_->{peer}}{cpu}, $_->{cpu}
    for @peers;
# BENCH_OLD: each scenario against the same scenario run with the other
# build just before or after it.
my @old = grep { ok($_) && $_->{name} =~ /\@old$/ && ok($by{$_->{name} =~ s/\@old$//r}) } @rows;
print "against the old build (BENCH_OLD), CPU µs/req:\n" if @old;
printf "  %-18s %7.1f old %7.1f new %+6.1f\n", $_->{name} =~ s/\@old$//r, $_->{cpu},
    $by{$_->{name} =~ s/\@old$//r}{cpu}, $by{$_->{name} =~ s/\@old$//r}{cpu} - $_->{cpu}
    for @old;
my @bad = grep { $_->{check} =~ /^(INVALID|FAILED)/ } @rows;
printf STDERR "\n!!! %s: %s%s\n", $_->{name}, $_->{check},
    $_->{check} =~ /^INVALID/ ? ' -- its figures are NOT a result' : '' for @bad;
exit(@bad ? 1 : 0);
