//! Fuzz target: the delay-spec parser, by the rules in `fuzz_check::delay_spec`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_check::delay_spec::check(data));
