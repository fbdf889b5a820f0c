#!/usr/bin/perl
# Reads bench/run's raw rows on stdin, writes the TSV named by $ARGV[0] and
# prints the table.  Exits 1 if a scenario is INVALID or FAILED.
use strict; use warnings; use utf8;
binmode STDOUT, ':utf8';

my ($date, $nginx, $nproc, $tck, $wrk) = split /\t/, $ENV{BENCH_META};
my (@rows, %by);
while (<STDIN>) {
    chomp; my ($name, $st, @f) = split /\t/;
    my %r = (name => $name, check => $f[-1] // '');
    if ($st eq 'measured') {
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
my $base = $by{proxy};
$base = undef unless $base && $base->{check} eq 'ok';
for my $r (@rows) {
    next unless $base && $r->{check} eq 'ok';
    $r->{vs_rps} = $r->{rps} / $base->{rps};
    $r->{vs_cpu} = $r->{cpu} - $base->{cpu};
}

# Machine-readable copy.
my @cols = qw(scenario requests seconds req_per_s p50_ms p99_ms cpu_us_per_req
              req_per_s_vs_proxy cpu_us_per_req_vs_proxy check);
open my $tsv, '>:utf8', $ARGV[0] or die "$ARGV[0]: $!";
print $tsv "# date: $date\n# nginx: $nginx\n# nproc: $nproc\n# CLK_TCK: $tck\n# wrk: $wrk\n";
print $tsv join("\t", @cols), "\n";
for my $r (@rows) {
    my @v = ($r->{name}, map { defined $r->{$_->[0]} ? sprintf($_->[1], $r->{$_->[0]}) : '' }
             [req => '%d'], [secs => '%.2f'], [rps => '%.0f'], [p50 => '%.3f'], [p99 => '%.3f'],
             [cpu => '%.1f'], [vs_rps => '%.3f'], [vs_cpu => '%+.1f']);
    print $tsv join("\t", @v, $r->{check}), "\n";
}
close $tsv;

# The table.
my $fmt = "%-10s %9s %9s %11s %15s %20s  %s\n";
print "openbank bench: $date, $nginx, nproc $nproc, $wrk\n";
printf $fmt, 'scenario', 'req/s', 'p99', 'CPU µs/req', 'req/s vs proxy', 'CPU µs/req vs proxy', 'check';
for my $r (@rows) {
    my $m = defined $r->{req};
    printf $fmt, $r->{name},
        $m ? sprintf('%.0f', $r->{rps}) : '-', $m ? sprintf('%.2fms', $r->{p99}) : '-',
        $m ? sprintf('%.1f', $r->{cpu}) : '-',
        defined $r->{vs_rps} ? sprintf('%.2fx', $r->{vs_rps}) : '-',
        defined $r->{vs_cpu} ? sprintf('%+.1f', $r->{vs_cpu}) : '-',
        $r->{check};
}
print "req/s, p99: seen by wrk.  CPU µs/req: user+sys CPU of the measured nginx's worker per request\n",
      "(upstream nginx and wrk not counted; the steadier figure).  vs proxy: req/s ratio, CPU µs difference.\n";
my @bad = grep { $_->{check} =~ /^(INVALID|FAILED)/ } @rows;
printf STDERR "\n!!! %s: %s%s\n", $_->{name}, $_->{check},
    $_->{check} =~ /^INVALID/ ? ' -- its figures are NOT a result' : '' for @bad;
exit(@bad ? 1 : 0);
