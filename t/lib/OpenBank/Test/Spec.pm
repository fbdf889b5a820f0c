package OpenBank::Test::Spec;

# The test file's __DATA__ section, read with Test::Base: blocks, sections,
# filters (chomp, eval, lines, ...), --- ONLY / --- SKIP / --- LAST.
#
# Test::Base is loaded but never imported: its import would install an END
# block that runs run_compare() and plans on its own, which does not mix
# with done_testing.  We use it as a plain class instead.
#
# The "eval" filter is replaced so that (a) a Perl error fails the block
# instead of silently becoming the section's value, and (b) the code runs
# in package main, where $TEST_NGINX_SERVER_PORT and friends are set (see
# OpenBank::Test::Nginx::publish_vars) and the test file's own subs are
# callable.

use v5.36;
use strict;
use warnings;

require Test::Base;
require Test::Base::Filter;
our @ISA = ('Test::Base');

# Blocks of the __DATA__ section (an empty list when there is none), after
# Test::Base's ONLY/SKIP/LAST selection.  Filters have not run yet.
sub data_blocks ($class) {
    my $spec = $class->new;
    return @{$spec->block_list};
}

# Runs the block's filters once; dies with a readable message on failure.
sub filter_block ($class, $block) {
    return if $block->is_filtered;
    local $@;
    eval { $block->run_filters; 1 }
        or die "filters of '" . $block->name . "' failed: $@";
}

# The block's sections as a plain hash: name → value (a list of several
# values becomes an arrayref), in the order written.
sub block_sections ($class, $block) {
    my %sections;
    for my $name (@{$block->{_section_order}[0] // []}) {
        my @values = @{$block->{$name} // []};
        $sections{$name} = @values > 1 ? [@values] : $values[0];
    }
    return \%sections;
}

# Perl code from a section, compiled in package main without "strict vars"
# so that $TEST_NGINX_* are visible.  Returns the code's list value.
sub eval_in_main ($code, $what = 'section') {
    $what =~ s/["\n]/ /g;
    my @result = CORE::eval(
        "package main; no strict 'vars'; no warnings 'once';\n"
      . "#line 1 \"$what\"\n$code");
    die "eval of $what failed: $@" if $@;
    return @result;
}


package OpenBank::Test::Spec::Filter;

use v5.36;
use strict;
use warnings;

our @ISA = ('Test::Base::Filter');

sub eval ($self, @input) {
    my $block = $self->current_block;
    my $what = $block ? $block->name . ' (eval filter)' : 'eval filter';
    return OpenBank::Test::Spec::eval_in_main(join('', @input), $what);
}

1;
