//! Fuzz target: echo-core's line and raw framing against the model in `fuzz_check::framing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_check::framing::check(data));
