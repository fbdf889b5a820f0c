package OpenBank::Test::Match;

# The comparisons behind the harness's expectations, as plain functions
# with no side effects, so that t/000-harness.t can prove that each one
# fails when it should.  Every check_* function returns a list of
# { name => ..., ok => 0|1, diag => ... } records; the harness turns each
# one into a Test::More assertion.

use v5.36;
use strict;
use warnings;
no warnings 'experimental::builtin';

use builtin qw(blessed created_as_number);
use JSON::PP ();
use Text::Diff ();

use Exporter 'import';
our @EXPORT_OK = qw(
    substitute_vars parse_request_section parse_user_files
    text_diff body_diff
    parse_header_spec check_headers
    json_subset_match json_subset_mismatch check_json
    log_patterns log_matches check_log unexpected_alerts crashed_workers
    log_without_debug
);

my $JSON = JSON::PP->new->canonical->pretty->allow_nonref->allow_blessed
                       ->convert_blessed;
my $JSON_LINE = JSON::PP->new->canonical->allow_nonref->allow_blessed
                            ->convert_blessed;


# ---------------------------------------------------------------------
# variables

# Replaces $NAME for every NAME in %$vars, exactly (nginx's own
# $variables and unknown $TEST_NGINX_ names stay as they are).  Walks
# array and hash references; leaves regexps and code alone.
sub substitute_vars ($value, $vars) {
    return $value unless defined $value;

    if (ref $value eq 'ARRAY') {
        return [map { substitute_vars($_, $vars) } @$value];
    }
    if (ref $value eq 'HASH') {
        return {map { $_ => substitute_vars($value->{$_}, $vars) }
                keys %$value};
    }
    return $value if ref $value;

    (my $out = $value) =~ s{\$(TEST_NGINX_\w+)}
                           {exists $vars->{$1} ? $vars->{$1} : "\$$1"}ge;
    return $out;
}


# ---------------------------------------------------------------------
# sections with a small syntax of their own

# "METHOD /path [HTTP/x.y]\n<body lines>" → (method, path, version, body).
# The body is everything after the first line without its final newline;
# undef when there is none.
sub parse_request_section ($text) {
    my ($first, $rest) = split /\n/, $text, 2;
    $first //= '';
    $first =~ s/^\s+|\s+$//g;
    my ($method, $path, $version) = split /\s+/, $first, 3;
    die "request line '$first' is not 'METHOD /path [HTTP/x.y]'\n"
        unless defined $path && $method =~ /^[A-Z]+$/;

    my $body;
    if (defined $rest && length $rest) {
        ($body = $rest) =~ s/\n\z//;
    }
    return ($method, $path, $version // 'HTTP/1.1', $body);
}

# ">>> path\ncontent..." blocks → ([path, content], ...).  An arrayref of
# [path, content] pairs or a hashref path → content is also taken.
sub parse_user_files ($spec) {
    return () unless defined $spec;
    my @files;

    if (ref $spec eq 'HASH') {
        @files = map { [$_ => $spec->{$_}] } sort keys %$spec;
    } elsif (ref $spec eq 'ARRAY') {
        @files = map { [@$_] } @$spec;
    } else {
        my $current;
        for my $line (split /^/, $spec) {
            if ($line =~ /^>>>\s*(\S+)\s*$/) {
                push @files, $current = [$1 => ''];
            } elsif ($current) {
                $current->[1] .= $line;
            } elsif ($line =~ /\S/) {
                die "user_files: content before the first '>>> path' line\n";
            }
        }
    }

    for my $file (@files) {
        die "user_files: path '$file->[0]' must be relative, without '..'\n"
            if $file->[0] =~ m{^/|(?:^|/)\.\.(?:/|$)};
    }
    return @files;
}


# ---------------------------------------------------------------------
# bodies

sub text_diff ($want, $got, $want_label = 'expected', $got_label = 'got') {
    return Text::Diff::diff(\$want, \$got, {
        STYLE       => 'Unified',
        FILENAME_A  => $want_label,
        FILENAME_B  => $got_label,
    });
}

# undef when equal, else a readable explanation with a diff.
sub body_diff ($got, $want) {
    return 'no response body' unless defined $got;
    return undef if $got eq $want;

    my $diff = text_diff($want, $got);
    if ($diff !~ /\S/ || $want =~ s/\n\z//r eq $got =~ s/\n\z//r) {
        $diff .= "(the bodies differ only in their final newline)\n";
    }
    return "response body differs:\n$diff";
}


# ---------------------------------------------------------------------
# headers

# "Name: value", "Name:" (present, empty), "!Name" (absent) per line.
sub parse_header_spec ($text) {
    my @spec;
    for my $line (split /\r?\n/, $text // '') {
        next unless $line =~ /\S/;
        if ($line =~ /^\s*!\s*([^:\s]+)\s*$/) {
            push @spec, {name => $1, absent => 1};
        } elsif ($line =~ /^\s*([^:\s]+):[ \t]?(.*?)[ \t]*$/) {
            push @spec, {name => $1, value => $2};
        } else {
            die "bad response header expectation '$line'"
              . " (want 'Name: value' or '!Name')\n";
        }
    }
    return @spec;
}

sub _show_values (@values) {
    return @values ? join(' | ', map { "'$_'" } @values) : '(absent)';
}

# $headers: {lowercased name => [values]}.  $like: values are regexes.
# One expectation line for a name compares against all its values joined
# with ", "; several lines for the same name compare value by value.
sub check_headers ($headers, $spec_text, $like = 0) {
    my (%want, @order);
    for my $item (parse_header_spec($spec_text)) {
        my $key = lc $item->{name};
        push @order, $key unless $want{$key};
        push @{$want{$key}}, $item;
    }

    my @checks;
    for my $key (@order) {
        my @items = @{$want{$key}};
        my $name = $items[0]{name};
        my @got = @{$headers->{$key} // []};

        if (grep { $_->{absent} } @items) {
            push @checks, {
                name => "header $name absent",
                ok   => !@got,
                diag => "header $name: " . _show_values(@got),
            };
            next;
        }

        my @want = map { $_->{value} } @items;
        my @pairs = @want == 1 ? ([join(', ', @got), $want[0]])
                  : map { [$got[$_], $want[$_]] } 0 .. $#want;
        my $ok = @got && (@want == 1 || @got == @want);
        for my $pair ($ok ? @pairs : ()) {
            my ($g, $w) = @$pair;
            $ok &&= defined $g && ($like ? scalar($g =~ /$w/) : $g eq $w);
        }

        push @checks, {
            name => "header $name" . ($like ? ' like' : ''),
            ok   => $ok ? 1 : 0,
            diag => "header $name:\n     got: " . _show_values(@got)
                  . "\n  wanted: " . _show_values(@want)
                  . ($like ? ' (regex)' : ''),
        };
    }
    return @checks;
}


# ---------------------------------------------------------------------
# JSON

sub _json_type ($v) {
    return 'null'    unless defined $v;
    return 'boolean' if JSON::PP::is_bool($v);
    return 'regexp'  if ref $v eq 'Regexp';
    return 'object'  if ref $v eq 'HASH';
    return 'array'   if ref $v eq 'ARRAY';
    return 'number'  if !ref $v && created_as_number($v);
    return 'string';
}

sub _show ($v) {
    return 'null' unless defined $v;
    return "$v" if ref $v eq 'Regexp';
    return $JSON_LINE->encode($v);
}

# undef when $got contains everything in $want, else "path: reason".
# Objects: every key of $want, recursively (extra keys in $got are fine).
# Arrays: same length, element by element.  A string starting with "~",
# or a qr//, is a regex the value must match.
sub json_subset_mismatch ($got, $want, $path = '$') {
    my $wtype = _json_type($want);
    my $gtype = _json_type($got);

    if ($wtype eq 'regexp' || ($wtype eq 'string' && $want =~ /^~/)) {
        my $re = $wtype eq 'regexp' ? $want : substr $want, 1;
        return "$path: expected a string or number matching /$re/,"
             . " got " . _show($got)
            unless $gtype eq 'string' || $gtype eq 'number';
        return $got =~ /$re/ ? undef
             : "$path: " . _show($got) . " does not match /$re/";
    }

    return "$path: expected $wtype " . _show($want)
         . ", got $gtype " . _show($got)
        if $wtype ne $gtype;

    if ($wtype eq 'object') {
        for my $key (sort keys %$want) {
            return "$path.$key: missing" unless exists $got->{$key};
            my $err = json_subset_mismatch($got->{$key}, $want->{$key},
                                           "$path.$key");
            return $err if defined $err;
        }
        return undef;
    }

    if ($wtype eq 'array') {
        return "$path: expected " . @$want . " elements, got " . @$got
            if @$want != @$got;
        for my $i (0 .. $#$want) {
            my $err = json_subset_mismatch($got->[$i], $want->[$i],
                                           "$path\[$i]");
            return $err if defined $err;
        }
        return undef;
    }

    my $same = $wtype eq 'null'    ? 1
             : $wtype eq 'boolean' ? (!!$got == !!$want)
             : $wtype eq 'number'  ? ($got == $want)
             :                       ($got eq $want);
    return $same ? undef
         : "$path: expected " . _show($want) . ", got " . _show($got);
}

sub json_subset_match ($got, $want) {
    return !defined json_subset_mismatch($got, $want);
}

# $want: JSON text or a Perl structure (from an eval filter).
sub check_json ($body, $want) {
    my $check = {name => 'response json', ok => 0};

    if (!ref $want) {
        $want = eval { JSON::PP->new->relaxed->allow_nonref->decode($want) };
        if ($@) {
            $check->{diag} = "response_json section is not JSON: $@";
            return $check;
        }
    }

    my $got = eval { JSON::PP->new->allow_nonref->decode($body // '') };
    if ($@) {
        $check->{diag} = "response body is not JSON: $@body: "
                       . ($body // '(none)');
        return $check;
    }

    my $err = json_subset_mismatch($got, $want);
    return {%$check, ok => 1} unless defined $err;

    $check->{diag} = "$err\n"
        . text_diff($JSON->encode($want), $JSON->encode($got),
                    'expected (subset)', 'got');
    return $check;
}


# ---------------------------------------------------------------------
# error log

# The patterns of an error_log / no_error_log section: each line of a
# string; each element of an array (strings taken whole, qr// as regexes).
sub log_patterns ($value) {
    return () unless defined $value;
    return ($value) if ref $value eq 'Regexp';
    return map { ref $_ ? log_patterns($_) : $_ } @$value
        if ref $value eq 'ARRAY';
    die "error_log: cannot use a " . ref($value) . " as a pattern\n"
        if ref $value;
    return grep { length } split /\r?\n/, $value;
}

sub log_matches ($text, $pattern) {
    return ref $pattern eq 'Regexp' ? scalar($text =~ $pattern)
                                    : index($text, $pattern) >= 0;
}

sub _pattern_name ($pattern) {
    my $shown = ref $pattern ? "$pattern" : "'$pattern'";
    return length $shown > 90 ? substr($shown, 0, 87) . '...' : $shown;
}

my $ENTRY = qr{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\]};

# The log's lines without [debug] entries (nor their continuation lines,
# such as the response headers nginx dumps at debug level).
sub log_without_debug ($text) {
    my ($debug, @kept) = (0);
    for my $line (split /\n/, $text) {
        $debug = $1 eq 'debug' if $line =~ $ENTRY;
        push @kept, $line unless $debug;
    }
    return @kept;
}

sub _log_excerpt ($text, $n = 30) {
    my @lines = log_without_debug($text);
    @lines = @lines[-$n .. -1] if @lines > $n;
    return @lines ? join("\n", @lines) : '(no non-debug lines)';
}

# $negate: the patterns must NOT appear.
sub check_log ($text, $patterns, $negate = 0, $label = 'error log') {
    my @checks;
    for my $pattern (@$patterns) {
        my $found = log_matches($text, $pattern);
        my @hits = grep { log_matches($_, $pattern) } split /\n/, $text;
        @hits = @hits[0 .. 9] if @hits > 10;
        push @checks, {
            name => ($negate ? "no $label" : $label) . ' '
                  . _pattern_name($pattern),
            ok   => ($negate ? !$found : $found) ? 1 : 0,
            diag => $negate
                ? "found in the $label:\n" . join("\n", @hits)
                : "not found in the $label; its last non-debug lines:\n"
                  . _log_excerpt($text),
        };
    }
    return @checks;
}

# Log entries of level alert, emerg or crit not matched by any of
# @$excuses.  Worker crash lines are left to crashed_workers().
sub unexpected_alerts ($text, $excuses = []) {
    return grep {
        my $line = $_;
        $line =~ $ENTRY && $1 =~ /^(?:alert|emerg|crit)$/
            && $line !~ /worker process \d+ exited on signal/
            && !grep { log_matches($line, $_) } @$excuses;
    } split /\n/, $text;
}

# "worker process N exited on signal S" entries not matched by @$excuses.
sub crashed_workers ($text, $excuses = []) {
    return grep {
        my $line = $_;
        $line =~ $ENTRY && $line =~ /worker process \d+ exited on signal/
            && !grep { log_matches($line, $_) } @$excuses;
    } split /\n/, $text;
}

1;
